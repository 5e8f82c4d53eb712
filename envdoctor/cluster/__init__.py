"""The cluster check: the reports of every node of a training job, compared.

``nodes`` reads reports (files, or what the ranks sent), ``table`` reads which facts must
agree, ``drift`` finds what differs and evaluates the knowledge base once per distinct
environment, ``launch`` reads the launcher's variables and ``distributed`` gathers the
reports over torch.distributed (the only module that imports torch).
"""

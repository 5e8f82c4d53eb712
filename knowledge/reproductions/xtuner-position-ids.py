"""The InternLM2 position_ids records, run through XTuner's own collate and training-step code.

In a venv holding one XTuner release (CPU torch): a tiny randomly initialised model whose
classes carry InternLM2's names (InternLM2ForCausalLM, InternLM2FlashAttention2,
InternLM2RotaryEmbedding), so that XTuner's dispatch swaps in its own attention forward and
rotary embedding exactly as it does for the real model; the real remote code comes from the
Hub, which a reproduction does not reach. Then, for 1, 2, 4 and 8 ranks (gloo, one process
each, every rank with its own sample of 9 and of 100 tokens):

  mmengine path     default_collate_fn -> SupervisedFinetune.compute_loss (plain `xtuner train`)
  huggingface path  default_collate_fn(return_hf_format=True) -> the model (framework='huggingface')

One line per case: the sequence-parallel size XTuner uses, whether XTuner patched the attention
(it does not where it wants flash-attn, as 0.1.20 does), and per rank the tokens the model got,
the position_ids' max + 1 it got (the assertion needs it >= the tokens), and the ranks on which
XTuner's attention asserted. Before those, one process with a token id 0 inside the text (the
collate cause).
"""

import json
import os
import socket
import sys
import tempfile
import time
import traceback
import types

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

VOCAB, HIDDEN, HEADS = 64, 32, 8
LENGTHS = (9, 100)  # 9: not a multiple of 2, 4 or 8; 100: a multiple of 2 and 4, not of 8


class Config(types.SimpleNamespace):
    pass


class InternLM2RotaryEmbedding(nn.Module):
    """The attributes XTuner's replace_internlm2_rote / replace_rote read before replacing it."""

    def __init__(self, dim, max_position_embeddings=128):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)
        self.max_position_embeddings = max_position_embeddings
        self.max_seq_len_cached = max_position_embeddings

    def forward(self, x, seq_len):
        t = torch.arange(int(seq_len), dtype=torch.float32)
        emb = torch.cat([torch.outer(t, self.inv_freq)] * 2, dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


class InternLM2FlashAttention2(nn.Module):
    """What XTuner patches (the class transformers picks with flash_attention_2)."""

    def __init__(self):
        super().__init__()
        self.hidden_size, self.num_heads = HIDDEN, HEADS
        self.head_dim = HIDDEN // HEADS
        self.num_key_value_heads, self.num_key_value_groups = HEADS, 1
        self.is_causal = True
        self.wqkv = nn.Linear(HIDDEN, (HEADS + 2 * HEADS) * self.head_dim, bias=False)
        self.wo = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.rotary_emb = InternLM2RotaryEmbedding(self.head_dim)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, **kwargs):
        # The model's own forward, used only where XTuner patches nothing: plain causal attention.
        bsz, q_len, _ = hidden_states.shape
        q, k, v = self.wqkv(hidden_states).view(bsz, q_len, 3, HEADS, self.head_dim).unbind(2)
        out = nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(bsz, q_len, HIDDEN)), None, None


class InternLM2ForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.config = Config(rope_theta=10000, use_cache=False, max_position_embeddings=128)
        self.tok_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.attention = InternLM2FlashAttention2()
        self.output = nn.Linear(HIDDEN, VOCAB, bias=False)
        self.seen = []

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, **kwargs):
        self.seen.append((int(input_ids.shape[1]), int(position_ids.max()) + 1))
        hidden = self.attention(self.tok_embeddings(input_ids), attention_mask=None, position_ids=position_ids)[0]
        logits = self.output(hidden)
        loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100)
        return types.SimpleNamespace(loss=loss, logits=logits)


def sample(rank, length, zero_inside=False):
    g = torch.Generator().manual_seed(1000 + rank)
    ids = torch.randint(1, VOCAB, (length,), generator=g).tolist()
    if zero_inside:
        ids[length // 2] = 0  # a real token whose id is the pad id 0
    return {"input_ids": ids, "labels": list(ids)}


def one_case(path, rank, length, zero_inside=False):
    """What rank ``rank`` went through: a dict for the summary line."""
    from xtuner.dataset.collate_fns import default_collate_fn
    from xtuner.parallel.sequence import get_sequence_parallel_world_size

    torch.manual_seed(0)
    llm = InternLM2ForCausalLM()
    instance = sample(rank, length, zero_inside)
    if path == "mmengine":
        from xtuner.model import SupervisedFinetune

        model = SupervisedFinetune(llm=llm, use_activation_checkpointing=False)
        data = default_collate_fn([instance])["data"]
        run = lambda: model.compute_loss(data)  # noqa: E731
    else:
        from xtuner.model.modules import dispatch_modules

        dispatch_modules(llm)  # what tools/train.py does on this path
        data = default_collate_fn([instance], return_hf_format=True)
        run = lambda: llm(**data)  # noqa: E731
    patched = llm.attention.forward.__func__.__module__.startswith("xtuner")
    try:
        run()
        result = "ok"
    except AssertionError:
        frame = traceback.extract_tb(sys.exc_info()[2])[-1]
        result = "AssertionError: %s" % frame.line
    except Exception as exc:  # e.g. a collective whose peer rank failed
        result = "error: %s: %s" % (type(exc).__name__, (str(exc).splitlines() or [""])[0][:200])
    seen, top = llm.seen[0] if llm.seen else (0, 0)
    return {"sp": get_sequence_parallel_world_size(), "patched": patched, "seen": seen, "top": top, "result": result}


def worker(rank, world, port, path, folder, length, zero_inside=False):
    # Each case in fresh processes: XTuner caches the sequence-parallel size on first use.
    # The ranks' own output (XTuner's dispatch log, once per rank and case) would bury the
    # summary lines; what matters comes back through the file below.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    if world:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank, world_size=world)
    try:
        found = one_case(path, rank, length, zero_inside)
    except Exception as exc:  # what broke, for the line; the other ranks may hang on it
        found = {"result": "error: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")}
    with open(os.path.join(folder, "%d" % rank), "w") as handle:
        json.dump(found, handle)
    if world:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distributed(path, world, length, zero_inside=False):
    """One summary line; world 0: one process without torch.distributed."""
    ctx = mp.get_context("fork")  # the children share the parent's imports: 8 ranks on 2 cores
    ranks = range(max(1, world))
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        procs = [ctx.Process(target=worker, args=(r, world, port, path, folder, length, zero_inside)) for r in ranks]
        for p in procs:
            p.start()
        deadline = time.time() + 300
        for p in procs:
            p.join(max(1, deadline - time.time()))
            if p.is_alive():
                p.kill()
        found = []
        for r in ranks:
            try:
                with open(os.path.join(folder, "%d" % r)) as handle:
                    found.append(json.load(handle))
            except (OSError, ValueError):
                found.append({"result": "error: no result (crashed or hung)"})
    broken = [r for r, f in enumerate(found) if "sp" not in f]  # failed before the model ran
    if broken:
        return "; ".join("rank %d %s" % (r, found[r]["result"]) for r in broken)
    first = found[0]
    asserting = [r for r, f in enumerate(found) if f["result"].startswith("AssertionError")]
    others = [r for r, f in enumerate(found) if f["result"].startswith("error")]
    line = "sp size %d, xtuner attention %s, tokens per rank %s, position_ids max+1 per rank %s, assertion fails on ranks %s" % (
        first["sp"], "patched" if first["patched"] else "not patched", [f["seen"] for f in found],
        [f["top"] for f in found], asserting or "none")
    if asserting:
        said = found[asserting[0]]["result"]
        line += " (%s)" % ("position_ids.max() + 1 >= kv_seq_len" if "(position_ids.max() + 1) >= kv_seq_len" in said else said)
    if others:
        # After one rank fails, the others' collective (the loss reduction) loses its peer.
        said = found[others[0]]["result"]
        line += "; errors on ranks %s (%s)" % (others, "a peer rank is gone" if "closed by peer" in said else said[:120])
    return line


def main():
    torch.set_num_threads(1)
    from importlib import metadata

    # Imported once here, before the ranks fork; nothing here touches the sequence-parallel state.
    import xtuner.dataset.collate_fns  # noqa: F401
    import xtuner.model  # noqa: F401
    import xtuner.parallel.sequence  # noqa: F401

    print("xtuner %s, torch %s" % (metadata.version("xtuner"), torch.__version__))
    print("one process, token id 0 inside an 8-token text: %s" % distributed("mmengine", 0, 8, zero_inside=True))
    worlds = [int(w) for w in sys.argv[1:]] or [1, 2, 4, 8]
    for path in ("mmengine", "huggingface"):
        for length in LENGTHS:
            for world in worlds:
                print("%s path, %d rank%s, %d tokens: %s" % (path, world, "" if world == 1 else "s", length,
                                                             distributed(path, world, length)))


if __name__ == "__main__":
    main()

"""Records of the upper stack (transformers, tokenizers, huggingface-hub, trl, accelerate, datasets,
peft, XTuner's neighbours): each fires on pins that have the problem and stays quiet on the
boundary release, and its symptom is found in a noisy log while near misses are not.

Pins are requirements files checked with `envdoctor check -r` (no install: the records decide by
versions); each pin set is checked once, in a subprocess, and shared by its rows.
"""

import json
import os
import sys

import pytest

from builders import assert_row, envdoctor, fact_args, pin_reports

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from envdoctor.kb.load import load, shipped_dir  # noqa: E402

KB = {r.id: r for r in load([shipped_dir()]).records}

# name -> pins (a requirements file's lines)
PINS = {
    "trl-0711-t439": ["trl==0.7.11", "transformers==4.39.0"],
    "trl-080-t439": ["trl==0.8.0", "transformers==4.39.0"],
    "trl-0711-t438": ["trl==0.7.11", "transformers==4.38.2"],
    "t4573-hub1": ["transformers==4.57.3", "huggingface-hub==1.0.1"],
    "t4310-hub1": ["transformers==4.31.0", "huggingface-hub==1.1.0"],
    "t4302-hub1": ["transformers==4.30.2", "huggingface-hub==1.0.0"],
    "t500-hub1": ["transformers==5.0.0", "huggingface-hub==1.3.0"],
    "t4573-hub034": ["transformers==4.57.3", "huggingface-hub==0.36.0"],
    "t4393-tok019": ["transformers==4.39.3", "tokenizers==0.19.1"],
    "t4352-tok019": ["transformers==4.35.2", "tokenizers==0.20.0"],
    "t4351-tok019": ["transformers==4.35.1", "tokenizers==0.19.1"],
    "t4393-tok015": ["transformers==4.39.3", "tokenizers==0.15.2"],
    "t440-tok019": ["transformers==4.40.0", "tokenizers==0.19.1"],
    "t4442-tok020": ["transformers==4.44.2", "tokenizers==0.20.3"],
    "t450-tok020": ["transformers==4.45.0", "tokenizers==0.20.3"],
    "t4463-tok021": ["transformers==4.46.3", "tokenizers==0.21.0"],
    "t470-tok021": ["transformers==4.47.0", "tokenizers==0.21.0"],
    "t4554-tok022": ["transformers==4.55.4", "tokenizers==0.22.1"],
    "t4560-tok022": ["transformers==4.56.0", "tokenizers==0.22.1"],
    "t4520-acc12": ["transformers==4.52.0", "accelerate==1.2.1"],
    "t500-acc11": ["transformers==5.0.0", "accelerate==1.1.0"],
    "t4520-acc13": ["transformers==4.52.0", "accelerate==1.3.0"],
    "t4513-acc12": ["transformers==4.51.3", "accelerate==1.2.1"],
    "ds2145-fs202310": ["datasets==2.14.5", "fsspec==2023.10.0"],
    "ds250-fs202312": ["datasets==2.5.0", "fsspec==2023.12.2"],
    "ds2146-fs202310": ["datasets==2.14.6", "fsspec==2023.10.0"],
    "ds2145-fs202392": ["datasets==2.14.5", "fsspec==2023.9.2"],
    "ds240-fs202310": ["datasets==2.4.0", "fsspec==2023.10.0"],
    "trl-0114-t4460": ["trl==0.11.4", "transformers==4.46.0"],
    "trl-042-t4460": ["trl==0.4.2", "transformers==4.46.0"],
    "trl-080-t4460": ["trl==0.8.0", "transformers==4.46.0"],
    "trl-0120-t4460": ["trl==0.12.0", "transformers==4.46.0"],
    "trl-0114-t4452": ["trl==0.11.4", "transformers==4.45.2"],
    "peft-0171-t500": ["peft==0.17.1", "transformers==5.0.0"],
    "peft-0160-t520": ["peft==0.16.0", "transformers==5.2.0"],
    "peft-0180-t500": ["peft==0.18.0", "transformers==5.0.0"],
    "peft-0171-t4573": ["peft==0.17.1", "transformers==4.57.3"],
    "peft-0152-t500": ["peft==0.15.2", "transformers==5.0.0"],
    "peft-0180-t4480": ["peft==0.18.0", "transformers==4.48.0"],
    "peft-0180-t4513": ["peft==0.18.0", "transformers==4.51.3"],
    "peft-0181-t4480": ["peft==0.18.1", "transformers==4.48.0"],
    "peft-0180-t4520": ["peft==0.18.0", "transformers==4.52.0"],
    "peft-0171-t4480": ["peft==0.17.1", "transformers==4.48.0"],
    "ds2146-pa21": ["datasets==2.14.6", "pyarrow==21.0.0"],
    "ds100-pa21": ["datasets==1.0.0", "pyarrow==22.0.0"],
    "ds2147-pa21": ["datasets==2.14.7", "pyarrow==21.0.0"],
    "ds2146-pa20": ["datasets==2.14.6", "pyarrow==20.0.0"],
    "x0123-t448-varlen": ["xtuner==0.1.23", "transformers==4.48.0", "flash-attn==2.7.4"],
    "x0120-t4573-varlen": ["xtuner==0.1.20", "transformers==4.57.3", "flash-attn==2.7.4"],
    "x0123-t4471-varlen": ["xtuner==0.1.23", "transformers==4.47.1", "flash-attn==2.7.4"],
    "x020rc0-t448-varlen": ["xtuner==0.2.0rc0", "transformers==4.48.0", "flash-attn==2.7.4"],
    "x0123-t448-internlm2": ["xtuner==0.1.23", "transformers==4.48.0", "flash-attn==2.7.4"],
    "x0123-t448-packless": ["xtuner==0.1.23", "transformers==4.48.0", "flash-attn==2.7.4"],
    "t4390-acc10": ["transformers==4.39.0", "accelerate==1.0.0"],
    "t4320-acc121": ["transformers==4.32.0", "accelerate==1.2.1"],
    "t4400-acc10": ["transformers==4.40.0", "accelerate==1.0.0"],
    "t4390-acc0342": ["transformers==4.39.0", "accelerate==0.34.2"],
    "t4310-acc10": ["transformers==4.31.0", "accelerate==1.0.0"],
    "t4520-torch201": ["transformers==4.52.0", "torch==2.0.1"],
    "t4573-torch1131": ["transformers==4.57.3", "torch==1.13.1"],
    "t4513-torch201": ["transformers==4.51.3", "torch==2.0.1"],
    "t4520-torch210": ["transformers==4.52.0", "torch==2.1.0"],
    "t500-torch212": ["transformers==5.0.0", "torch==2.1.2"],
    "t500-torch220": ["transformers==5.0.0", "torch==2.2.0"],
    "t4340-tok015": ["transformers==4.34.0", "tokenizers==0.15.2"],
    "t4351-tok015": ["transformers==4.35.1", "tokenizers==0.15.0"],
    "t4352-tok015": ["transformers==4.35.2", "tokenizers==0.15.2"],
    "t4340-tok014": ["transformers==4.34.0", "tokenizers==0.14.1"],
    "t4360-hub0171": ["transformers==4.36.0", "huggingface-hub==0.17.1"],
    "t4402-hub0192": ["transformers==4.40.2", "huggingface-hub==0.19.2"],
    "t4402-hub0193": ["transformers==4.40.2", "huggingface-hub==0.19.3"],
    "t4410-hub0171": ["transformers==4.41.0", "huggingface-hub==0.17.1"],
    "t4352-hub0171": ["transformers==4.35.2", "huggingface-hub==0.17.1"],
    "t4420-hub0231": ["transformers==4.42.0", "huggingface-hub==0.23.1"],
    "t4463-hub0203": ["transformers==4.46.3", "huggingface-hub==0.20.3"],
    "t4463-hub0232": ["transformers==4.46.3", "huggingface-hub==0.23.2"],
    "t4470-hub0231": ["transformers==4.47.0", "huggingface-hub==0.23.1"],
    "trl-071-peft0100": ["trl==0.7.1", "peft==0.10.0"],
    "trl-042-peft0130": ["trl==0.4.2", "peft==0.13.2"],
    "trl-072-peft0100": ["trl==0.7.2", "peft==0.10.0"],
    "trl-071-peft090": ["trl==0.7.1", "peft==0.9.0"],
    "trl-041-peft0100": ["trl==0.4.1", "peft==0.10.0"],
    "t4560-tok0231": ["transformers==4.56.0", "tokenizers==0.23.1"],
    "t5151-tok0233": ["transformers==5.15.1", "tokenizers==0.23.3"],
    "t5160-tok0231": ["transformers==5.16.0", "tokenizers==0.23.1"],
    "t4573-tok0230": ["transformers==4.57.3", "tokenizers==0.23.0"],
    "t4554-tok0231": ["transformers==4.55.4", "tokenizers==0.23.1"],
    "t500-hub200": ["transformers==5.0.0", "huggingface-hub==2.0.0"],
    "t5170-hub240": ["transformers==5.17.0", "huggingface-hub==2.4.0"],
    "t5180-hub200": ["transformers==5.18.0", "huggingface-hub==2.0.0"],
    "t500-hub133": ["transformers==5.0.0", "huggingface-hub==1.33.0"],
    "ds2150-hub100": ["datasets==2.15.0", "huggingface-hub==1.0.0"],
    "ds1130-hub110": ["datasets==1.13.0", "huggingface-hub==1.1.0"],
    "ds2160-hub100": ["datasets==2.16.0", "huggingface-hub==1.0.0"],
    "ds2150-hub0360": ["datasets==2.15.0", "huggingface-hub==0.36.0"],
    "ds1121-hub100": ["datasets==1.12.1", "huggingface-hub==1.0.0"],
    "t4463-torch260": ["transformers==4.46.3", "torch==2.6.0"],
    "t4200-torch271": ["transformers==4.20.0", "torch==2.7.1"],
    "t4470-torch260": ["transformers==4.47.0", "torch==2.6.0"],
    "t4463-torch251": ["transformers==4.46.3", "torch==2.5.1"],
    "t4540-hub0302": ["transformers==4.54.0", "huggingface-hub==0.30.2"],
    "t4576-hub0339": ["transformers==4.57.6", "huggingface-hub==0.33.9"],
    "t4576-hub0340": ["transformers==4.57.6", "huggingface-hub==0.34.0"],
    "t4533-hub0302": ["transformers==4.53.3", "huggingface-hub==0.30.2"],
    "lf094-t4573-p0180": ["llamafactory==0.9.4", "transformers==4.57.3", "peft==0.18.0"],
    "lf094-t4500-p0130": ["llamafactory==0.9.4", "transformers==4.50.0", "peft==0.13.2"],
    "lf094-t4571-p0171": ["llamafactory==0.9.4", "transformers==4.57.1", "peft==0.17.1"],
    "lf094-t4510-p0140": ["llamafactory==0.9.4", "transformers==4.51.0", "peft==0.14.0"],
    "lf095-t4573-p0180": ["llamafactory==0.9.5", "transformers==4.57.3", "peft==0.18.0"],
    "lf093-t4573-p0180": ["llamafactory==0.9.3", "transformers==4.57.3", "peft==0.18.0"],
    "lf094-new": ["llamafactory==0.9.4", "trl==0.25.0", "accelerate==1.12.0", "datasets==4.1.0"],
    "lf094-old": ["llamafactory==0.9.4", "trl==0.17.0", "accelerate==1.2.1", "datasets==2.15.0"],
    "lf094-top": ["llamafactory==0.9.4", "trl==0.24.0", "accelerate==1.11.0", "datasets==4.0.0"],
    "lf094-bottom": ["llamafactory==0.9.4", "trl==0.18.0", "accelerate==1.3.0", "datasets==2.16.0"],
    "lf095-new": ["llamafactory==0.9.5", "trl==0.25.0", "accelerate==1.12.0", "datasets==4.1.0"],
    "t4480-hub0234": ["transformers==4.48.0", "huggingface-hub==0.23.4"],  # XTuner 0.2.0's transformers
    "t4483-hub0240": ["transformers==4.48.3", "huggingface-hub==0.24.0"],
    "t4490-hub0234": ["transformers==4.49.0", "huggingface-hub==0.23.4"],
    "t4510-hub0293": ["transformers==4.51.0", "huggingface-hub==0.29.3"],
    "t4533-hub0300": ["transformers==4.53.3", "huggingface-hub==0.30.0"],
    "t4503-hub0293": ["transformers==4.50.3", "huggingface-hub==0.29.3"],
}

# Facts a requirements file cannot hold (the model and the XTuner config), given with --fact.
FACTS = {
    "x0123-t448-varlen": ["model.type=llama", "train.use_varlen_attn=true"],
    "x0120-t4573-varlen": ["model.type=qwen2", "train.use_varlen_attn=true"],
    "x0123-t4471-varlen": ["model.type=llama", "train.use_varlen_attn=true"],
    "x020rc0-t448-varlen": ["model.type=llama", "train.use_varlen_attn=true"],
    "x0123-t448-internlm2": ["model.type=internlm2", "train.use_varlen_attn=true"],  # remote code keeps its class
    "x0123-t448-packless": ["model.type=llama", "train.use_varlen_attn=false"],
}

# (record, pin set, fires)
ROWS = [
    ("TRL-TOP-K-TOP-P-FILTERING-TRANSFORMERS-439", "trl-0711-t439", True),
    ("TRL-TOP-K-TOP-P-FILTERING-TRANSFORMERS-439", "trl-080-t439", False),  # trl carries its own copy
    ("TRL-TOP-K-TOP-P-FILTERING-TRANSFORMERS-439", "trl-0711-t438", False),  # still exported
    ("TRANSFORMERS-HUB-1-RUNTIME-CHECK", "t4573-hub1", True),
    ("TRANSFORMERS-HUB-1-RUNTIME-CHECK", "t4310-hub1", True),  # the first release that checks at import
    ("TRANSFORMERS-HUB-1-RUNTIME-CHECK", "t4302-hub1", False),  # 4.30 does not check huggingface-hub
    ("TRANSFORMERS-HUB-1-RUNTIME-CHECK", "t500-hub1", False),
    ("TRANSFORMERS-HUB-1-RUNTIME-CHECK", "t4573-hub034", False),
    ("TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK", "t4393-tok019", True),
    ("TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK", "t4352-tok019", True),
    ("TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK", "t4351-tok019", False),  # 4.35.1 wants <0.15: another band
    ("TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK", "t4393-tok015", False),
    ("TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK", "t440-tok019", False),
    ("TRANSFORMERS-TOKENIZERS-020-RUNTIME-CHECK", "t4442-tok020", True),
    ("TRANSFORMERS-TOKENIZERS-020-RUNTIME-CHECK", "t440-tok019", False),
    ("TRANSFORMERS-TOKENIZERS-020-RUNTIME-CHECK", "t450-tok020", False),
    ("TRANSFORMERS-TOKENIZERS-021-RUNTIME-CHECK", "t4463-tok021", True),
    ("TRANSFORMERS-TOKENIZERS-021-RUNTIME-CHECK", "t450-tok020", False),
    ("TRANSFORMERS-TOKENIZERS-021-RUNTIME-CHECK", "t470-tok021", False),
    ("TRANSFORMERS-TOKENIZERS-022-RUNTIME-CHECK", "t4554-tok022", True),
    ("TRANSFORMERS-TOKENIZERS-022-RUNTIME-CHECK", "t470-tok021", False),
    ("TRANSFORMERS-TOKENIZERS-022-RUNTIME-CHECK", "t4560-tok022", False),
    ("TRANSFORMERS-ACCELERATE-KEEP-TORCH-COMPILE", "t4520-acc12", True),
    ("TRANSFORMERS-ACCELERATE-KEEP-TORCH-COMPILE", "t500-acc11", True),  # 5.0 still declares accelerate>=1.1.0
    ("TRANSFORMERS-ACCELERATE-KEEP-TORCH-COMPILE", "t4520-acc13", False),
    ("TRANSFORMERS-ACCELERATE-KEEP-TORCH-COMPILE", "t4513-acc12", False),
    ("DATASETS-FSSPEC-2023-10-LOCAL-CACHE", "ds2145-fs202310", True),
    ("DATASETS-FSSPEC-2023-10-LOCAL-CACHE", "ds250-fs202312", True),
    ("DATASETS-FSSPEC-2023-10-LOCAL-CACHE", "ds2146-fs202310", False),
    ("DATASETS-FSSPEC-2023-10-LOCAL-CACHE", "ds2145-fs202392", False),
    ("DATASETS-FSSPEC-2023-10-LOCAL-CACHE", "ds240-fs202310", False),  # no such check before 2.5.0
    ("TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446", "trl-0114-t4460", True),
    ("TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446", "trl-080-t4460", True),
    ("TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446", "trl-042-t4460", False),  # import fails first (top_k_top_p_filtering)
    ("TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446", "trl-0120-t4460", False),
    ("TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446", "trl-0114-t4452", False),
    ("PEFT-HYBRID-CACHE-TRANSFORMERS-5", "peft-0171-t500", True),
    ("PEFT-HYBRID-CACHE-TRANSFORMERS-5", "peft-0160-t520", True),
    ("PEFT-HYBRID-CACHE-TRANSFORMERS-5", "peft-0180-t500", False),
    ("PEFT-HYBRID-CACHE-TRANSFORMERS-5", "peft-0171-t4573", False),
    ("PEFT-HYBRID-CACHE-TRANSFORMERS-5", "peft-0152-t500", False),
    ("PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452", "peft-0180-t4480", True),  # XTuner 0.2.0's pin
    ("PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452", "peft-0180-t4513", True),
    ("PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452", "peft-0181-t4480", False),
    ("PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452", "peft-0180-t4520", False),
    ("PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452", "peft-0171-t4480", False),
    ("DATASETS-PYARROW-21-PYEXTENSIONTYPE", "ds2146-pa21", True),
    ("DATASETS-PYARROW-21-PYEXTENSIONTYPE", "ds100-pa21", True),
    ("DATASETS-PYARROW-21-PYEXTENSIONTYPE", "ds2147-pa21", False),
    ("DATASETS-PYARROW-21-PYEXTENSIONTYPE", "ds2146-pa20", False),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x0123-t448-varlen", True),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x0120-t4573-varlen", True),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x0123-t4471-varlen", False),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x020rc0-t448-varlen", False),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x0123-t448-internlm2", False),
    ("XTUNER-VARLEN-DISPATCH-TRANSFORMERS-448", "x0123-t448-packless", False),
    ("TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES", "t4390-acc10", True),
    ("TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES", "t4320-acc121", True),
    ("TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES", "t4400-acc10", False),
    ("TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES", "t4390-acc0342", False),
    ("TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES", "t4310-acc10", False),  # no Accelerator in Trainer yet
    ("TRANSFORMERS-452-TORCH-BELOW-21", "t4520-torch201", True),
    ("TRANSFORMERS-452-TORCH-BELOW-21", "t4573-torch1131", True),
    ("TRANSFORMERS-452-TORCH-BELOW-21", "t4513-torch201", False),
    ("TRANSFORMERS-452-TORCH-BELOW-21", "t4520-torch210", False),
    ("TRANSFORMERS-452-TORCH-BELOW-21", "t500-torch212", False),
    ("TRANSFORMERS-5-TORCH-BELOW-22", "t500-torch212", True),
    ("TRANSFORMERS-5-TORCH-BELOW-22", "t500-torch220", False),
    ("TRANSFORMERS-5-TORCH-BELOW-22", "t4520-torch201", False),
    ("TRANSFORMERS-TOKENIZERS-015-RUNTIME-CHECK", "t4340-tok015", True),
    ("TRANSFORMERS-TOKENIZERS-015-RUNTIME-CHECK", "t4351-tok015", True),
    ("TRANSFORMERS-TOKENIZERS-015-RUNTIME-CHECK", "t4352-tok015", False),  # 4.35.2 takes <0.19
    ("TRANSFORMERS-TOKENIZERS-015-RUNTIME-CHECK", "t4340-tok014", False),
    ("TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK", "t4360-hub0171", True),
    ("TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK", "t4402-hub0192", True),
    ("TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK", "t4402-hub0193", False),
    ("TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK", "t4410-hub0171", False),  # another floor (0.23.0), not this record
    ("TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK", "t4352-hub0171", False),  # 4.35 wants >=0.16.4
    ("TRANSFORMERS-HUB-FLOOR-0232-RUNTIME-CHECK", "t4420-hub0231", True),
    ("TRANSFORMERS-HUB-FLOOR-0232-RUNTIME-CHECK", "t4463-hub0203", True),
    ("TRANSFORMERS-HUB-FLOOR-0232-RUNTIME-CHECK", "t4463-hub0232", False),
    ("TRANSFORMERS-HUB-FLOOR-0232-RUNTIME-CHECK", "t4470-hub0231", False),  # 4.47 wants >=0.24.0: another band
    ("TRL-PREPARE-INT8-PEFT-010", "trl-071-peft0100", True),
    ("TRL-PREPARE-INT8-PEFT-010", "trl-042-peft0130", True),
    ("TRL-PREPARE-INT8-PEFT-010", "trl-072-peft0100", False),
    ("TRL-PREPARE-INT8-PEFT-010", "trl-071-peft090", False),
    ("TRL-PREPARE-INT8-PEFT-010", "trl-041-peft0100", False),  # before trl imported it
    ("TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK", "t4560-tok0231", True),
    ("TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK", "t5151-tok0233", True),
    ("TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK", "t5160-tok0231", False),
    ("TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK", "t4573-tok0230", False),  # <=0.23.0 holds
    ("TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK", "t4554-tok0231", False),  # that band is the 0.22 record's
    ("TRANSFORMERS-5-HUB-2-RUNTIME-CHECK", "t500-hub200", True),
    ("TRANSFORMERS-5-HUB-2-RUNTIME-CHECK", "t5170-hub240", True),
    ("TRANSFORMERS-5-HUB-2-RUNTIME-CHECK", "t5180-hub200", False),
    ("TRANSFORMERS-5-HUB-2-RUNTIME-CHECK", "t500-hub133", False),
    ("DATASETS-HFFOLDER-HUB-1", "ds2150-hub100", True),
    ("DATASETS-HFFOLDER-HUB-1", "ds1130-hub110", True),
    ("DATASETS-HFFOLDER-HUB-1", "ds2160-hub100", False),
    ("DATASETS-HFFOLDER-HUB-1", "ds2150-hub0360", False),
    ("DATASETS-HFFOLDER-HUB-1", "ds1121-hub100", False),  # reached HfFolder through hf_api, inside a function
    ("TRANSFORMERS-RNG-STATE-TORCH-26", "t4463-torch260", True),
    ("TRANSFORMERS-RNG-STATE-TORCH-26", "t4200-torch271", True),
    ("TRANSFORMERS-RNG-STATE-TORCH-26", "t4470-torch260", False),
    ("TRANSFORMERS-RNG-STATE-TORCH-26", "t4463-torch251", False),
    ("TRANSFORMERS-HUB-FLOOR-0340-RUNTIME-CHECK", "t4540-hub0302", True),
    ("TRANSFORMERS-HUB-FLOOR-0340-RUNTIME-CHECK", "t4576-hub0339", True),
    ("TRANSFORMERS-HUB-FLOOR-0340-RUNTIME-CHECK", "t4576-hub0340", False),
    ("TRANSFORMERS-HUB-FLOOR-0340-RUNTIME-CHECK", "t4533-hub0302", False),  # 4.53 wants >=0.30.0
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf094-t4573-p0180", True),
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf094-t4500-p0130", True),
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf094-t4571-p0171", False),
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf094-t4510-p0140", False),
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf095-t4573-p0180", False),
    ("LLAMAFACTORY-094-TRANSFORMERS-RANGE", "lf093-t4573-p0180", False),  # 0.9.3 checks its own range
    ("LLAMAFACTORY-094-PEFT-RANGE", "lf094-t4573-p0180", True),
    ("LLAMAFACTORY-094-PEFT-RANGE", "lf094-t4500-p0130", True),
    ("LLAMAFACTORY-094-PEFT-RANGE", "lf094-t4571-p0171", False),
    ("LLAMAFACTORY-094-PEFT-RANGE", "lf094-t4510-p0140", False),
    ("LLAMAFACTORY-094-PEFT-RANGE", "lf095-t4573-p0180", False),
    ("TRANSFORMERS-HUB-FLOOR-0240-RUNTIME-CHECK", "t4480-hub0234", True),
    ("TRANSFORMERS-HUB-FLOOR-0240-RUNTIME-CHECK", "t4483-hub0240", False),
    ("TRANSFORMERS-HUB-FLOOR-0240-RUNTIME-CHECK", "t4490-hub0234", False),  # 4.49 wants >=0.26.0
    ("TRANSFORMERS-HUB-FLOOR-0300-RUNTIME-CHECK", "t4510-hub0293", True),
    ("TRANSFORMERS-HUB-FLOOR-0300-RUNTIME-CHECK", "t4533-hub0302", False),
    ("TRANSFORMERS-HUB-FLOOR-0300-RUNTIME-CHECK", "t4503-hub0293", False),  # 4.50 wants >=0.26.0
    ("LLAMAFACTORY-094-TRL-RANGE", "lf094-new", True),
    ("LLAMAFACTORY-094-TRL-RANGE", "lf094-old", True),
    ("LLAMAFACTORY-094-TRL-RANGE", "lf094-top", False),
    ("LLAMAFACTORY-094-TRL-RANGE", "lf094-bottom", False),
    ("LLAMAFACTORY-094-TRL-RANGE", "lf095-new", False),
    ("LLAMAFACTORY-094-ACCELERATE-RANGE", "lf094-new", True),
    ("LLAMAFACTORY-094-ACCELERATE-RANGE", "lf094-old", True),
    ("LLAMAFACTORY-094-ACCELERATE-RANGE", "lf094-top", False),
    ("LLAMAFACTORY-094-ACCELERATE-RANGE", "lf094-bottom", False),
    ("LLAMAFACTORY-094-ACCELERATE-RANGE", "lf095-new", False),
    ("LLAMAFACTORY-094-DATASETS-RANGE", "lf094-new", True),
    ("LLAMAFACTORY-094-DATASETS-RANGE", "lf094-old", True),
    ("LLAMAFACTORY-094-DATASETS-RANGE", "lf094-top", False),
    ("LLAMAFACTORY-094-DATASETS-RANGE", "lf094-bottom", False),
    ("LLAMAFACTORY-094-DATASETS-RANGE", "lf095-new", False),
]

# record -> lines that look like its symptom and must not match it
NEAR_MISSES = {
    "TRL-TOP-K-TOP-P-FILTERING-TRANSFORMERS-439": [
        "ImportError: cannot import name 'top_k_top_p_filtering' from 'trl.core' (/opt/conda/lib/python3.10/site-packages/trl/core.py)",
        "from transformers import top_k_top_p_filtering",
    ],
    "TRANSFORMERS-HUB-1-RUNTIME-CHECK": [
        "ImportError: huggingface-hub>=0.16.4,<1.0 is required for a normal functioning of this module, but found huggingface-hub==0.15.1.",
        "Requirement already satisfied: huggingface-hub<1.0,>=0.34.0 in /usr/lib/python3.10/site-packages (1.0.1)",
    ],
    "TRANSFORMERS-TOKENIZERS-019-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.14,<0.19 is required for a normal functioning of this module, but found tokenizers==0.13.3.",
        "ImportError: tokenizers>=0.19,<0.20 is required for a normal functioning of this module, but found tokenizers==0.15.2.",
    ],
    "TRANSFORMERS-TOKENIZERS-020-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.19,<0.20 is required for a normal functioning of this module, but found tokenizers==0.15.2.",
    ],
    "TRANSFORMERS-TOKENIZERS-021-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.20,<0.21 is required for a normal functioning of this module, but found tokenizers==0.19.1.",
    ],
    "TRANSFORMERS-TOKENIZERS-022-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.21,<0.22 is required for a normal functioning of this module, but found tokenizers==0.20.3.",
        "transformers 4.55.4 requires tokenizers<0.22,>=0.21, but you have tokenizers 0.22.1 which is incompatible.",
    ],
    "TRANSFORMERS-ACCELERATE-KEEP-TORCH-COMPILE": [
        "TypeError: Accelerator.unwrap_model() got an unexpected keyword argument 'keep_fp32_wrapper'",
        "model = accelerator.unwrap_model(model, keep_torch_compile=False)",
    ],
    "TRL-NUM-ITEMS-IN-BATCH-TRANSFORMERS-446": [
        "TypeError: compute_loss() got an unexpected keyword argument 'return_outputs'",
        "TypeError: Trainer.training_step() takes 3 positional arguments but 5 were given",
    ],
    "PEFT-HYBRID-CACHE-TRANSFORMERS-5": [
        "ImportError: cannot import name 'HybridCache' from 'transformers.cache_utils' (/usr/lib/python3/site-packages/transformers/cache_utils.py)",
        "ImportError: cannot import name 'EncoderDecoderCache' from 'transformers'",
    ],
    "PEFT-0180-MODELING-LAYERS-TRANSFORMERS-452": [
        "ModuleNotFoundError: No module named 'transformers.modeling_utils_extra'",
        "No module named 'transformers_modules'",
    ],
    "DATASETS-PYARROW-21-PYEXTENSIONTYPE": [
        "AttributeError: module 'pyarrow' has no attribute 'ExtensionType'",
        "FutureWarning: pyarrow.PyExtensionType is deprecated and will refuse deserialization by default.",
    ],
    "TRANSFORMERS-TOKENIZERS-015-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.14,<0.15 is required for a normal functioning of this module, but found tokenizers==0.13.3.",
    ],
    "TRANSFORMERS-HUB-FLOOR-0193-RUNTIME-CHECK": [
        "huggingface-hub>=0.19.3,<1.0 is required for a normal functioning of this module",  # cut before the version
        "ImportError: huggingface-hub>=0.16.4,<1.0 is required for a normal functioning of this module, but found huggingface-hub==0.15.1.",
    ],
    "TRANSFORMERS-HUB-FLOOR-0232-RUNTIME-CHECK": [
        "ImportError: huggingface-hub>=0.23.0,<1.0 is required for a normal functioning of this module, but found huggingface-hub==0.20.3.",
    ],
    "TRL-PREPARE-INT8-PEFT-010": [
        "ImportError: cannot import name 'prepare_model_for_kbit_training' from 'peft'",
        "model = prepare_model_for_int8_training(model)",
    ],
    "TRANSFORMERS-TOKENIZERS-0231-RUNTIME-CHECK": [
        "ImportError: tokenizers>=0.22.0,<=0.23.0 is required for a normal functioning of this module, but found tokenizers==0.21.4.",
        "ImportError: tokenizers>=0.23.1,<0.24.0 is required for a normal functioning of this module, but found tokenizers==0.23.0.",
    ],
    "TRANSFORMERS-5-HUB-2-RUNTIME-CHECK": [
        "ImportError: huggingface-hub>=1.5.0,<2.0 is required for a normal functioning of this module, but found huggingface-hub==1.2.0.",
    ],
    "DATASETS-HFFOLDER-HUB-1": [
        "ImportError: cannot import name 'HfFolder' from 'huggingface_hub.hf_api'",
        "FutureWarning: HfFolder is deprecated and will be removed in huggingface_hub 1.0",
    ],
    "TRANSFORMERS-RNG-STATE-TORCH-26": [
        "torch.load(rng_file, weights_only=False)",
        "WeightsUnpickler error: Unsupported global: GLOBAL deepspeed.runtime.fp16.loss_scaler.LossScaler was not an allowed global by default.",
    ],
    "TRANSFORMERS-HUB-FLOOR-0340-RUNTIME-CHECK": [
        "ImportError: huggingface-hub>=0.26.0,<1.0 is required for a normal functioning of this module, but found huggingface-hub==0.25.2.",
    ],
    "LLAMAFACTORY-094-TRANSFORMERS-RANGE": [
        "ImportError: transformers>=4.45.0,<=4.52.4,!=4.46.0 is required for a normal functioning of this module, but found transformers==4.57.3.",
        "transformers>=4.51.0,<=4.57.1",
    ],
    "LLAMAFACTORY-094-PEFT-RANGE": [
        "ImportError: peft>=0.14.0,<=0.15.2 is required for a normal functioning of this module, but found peft==0.17.1.",
    ],
    "LLAMAFACTORY-094-TRL-RANGE": [
        "ImportError: trl>=0.8.6,<=0.9.6 is required for a normal functioning of this module, but found trl==0.24.0.",
    ],
    "LLAMAFACTORY-094-ACCELERATE-RANGE": [
        "ImportError: accelerate>=0.34.0,<=1.7.0 is required for a normal functioning of this module, but found accelerate==1.11.0.",
    ],
    "LLAMAFACTORY-094-DATASETS-RANGE": [
        "ImportError: datasets>=2.16.0,<=3.6.0 is required for a normal functioning of this module, but found datasets==4.0.0.",
    ],
    "TRANSFORMERS-HUB-FLOOR-0240-RUNTIME-CHECK": [
        "ImportError: huggingface-hub>=0.23.0,<1.0 is required for a normal functioning of this module, but found huggingface-hub==0.22.2.",
    ],
    "TRANSFORMERS-HUB-FLOOR-0300-RUNTIME-CHECK": [
        "huggingface-hub>=0.30.0,<1.0 is required for a normal functioning of this module",  # cut before the version
    ],
    "TRANSFORMERS-ACCELERATE-1-DISPATCH-BATCHES": [
        "TypeError: Accelerator.__init__() got an unexpected keyword argument 'split_batches'",
        "UserWarning: dispatch_batches is deprecated and will be removed in version 1.0 of Accelerate.",
    ],
    "TRANSFORMERS-452-TORCH-BELOW-21": [
        "Disabling PyTorch because PyTorch >= 2.1 is required",  # cut before the version found
        "Disabling PyTorch because USE_TF is set",
    ],
    "TRANSFORMERS-5-TORCH-BELOW-22": [
        "Disabling PyTorch because USE_TF is set",
        "PyTorch >= 2.2 is required for this model",
    ],
    "DATASETS-FSSPEC-2023-10-LOCAL-CACHE": [
        "NotImplementedError: Loading a dataset cached in a S3FileSystem is not supported.",
        "Found cached dataset json (file:///root/.cache/huggingface/datasets/json/default)",
    ],
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """pin set -> the JSON report of `envdoctor check -r` on it (run on first use)."""
    return pin_reports(tmp_path_factory.mktemp("pins"), lambda name: (PINS[name], fact_args(FACTS.get(name, ()))))


@pytest.mark.parametrize("record_id,pins,fires", ROWS, ids=["%s@%s" % (r[0], r[1]) for r in ROWS])
def test_record_fires_on_affected_pins_and_not_on_the_boundary(checked, record_id, pins, fires):
    assert record_id in KB, "%s is not in the shipped knowledge base" % record_id
    finding = assert_row(checked(pins), record_id, "confirmed" if fires else None, "%s %s" % (pins, PINS[pins]))
    if fires:
        assert finding["evidence"] == "version", finding


def test_every_record_here_fires_somewhere_and_has_a_near_miss():
    symptomless = {r[0] for r in ROWS if not KB[r[0]].symptoms}
    for record_id in set(NEAR_MISSES) | symptomless:
        assert any(r[0] == record_id and r[2] for r in ROWS), record_id
        assert any(r[0] == record_id and not r[2] for r in ROWS), record_id
    assert {r[0] for r in ROWS} == set(NEAR_MISSES) | symptomless


@pytest.fixture(scope="module")
def symptom_log(tmp_path_factory):
    """One noisy log: each record's example inside a traceback, and its near misses elsewhere."""
    from test_explain import noise, write

    lines = noise(120, seed=41)
    examples, misses = {}, {}
    for i, record_id in enumerate(sorted(NEAR_MISSES)):
        for symptom in KB[record_id].symptoms:
            if symptom.weak:  # never named without an environment: see the weak test below
                continue
            lines += noise(20, seed=50 + i) + ["Traceback (most recent call last):", '  File "train.py", line 9, in <module>']
            lines.append(symptom.example)
            examples.setdefault(record_id, set()).add(len(lines))
        for miss in NEAR_MISSES[record_id]:
            lines += noise(5, seed=80 + i) + [miss]
            misses.setdefault(record_id, set()).add(len(lines))
    log = write(tmp_path_factory.mktemp("stack-log") / "train.log", lines + noise(40, seed=42))
    done = envdoctor("explain", "--format", "json", "--log-only", log)
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout), examples, misses


@pytest.mark.parametrize("record_id", sorted(NEAR_MISSES))
def test_symptom_found_in_a_noisy_log_and_near_misses_are_not(symptom_log, record_id):
    report, examples, misses = symptom_log
    numbers = {line["line"] for m in report["matches"] if record_id in {r["id"] for r in m["records"]} for line in m["lines"]}
    assert numbers == examples[record_id], (record_id, numbers, examples[record_id], misses[record_id])


@pytest.mark.parametrize("pins,shown", [("t4520-torch201", ["TRANSFORMERS-452-TORCH-BELOW-21"]),
                                        ("t500-torch212", ["TRANSFORMERS-5-TORCH-BELOW-22"]),
                                        ("t4520-torch210", [])])
def test_weak_model_class_line_is_a_candidate_only_where_torch_is_switched_off(tmp_path, pins, shown):
    from test_explain import noise, write

    line = ("ImportError: AutoModelForCausalLM requires the PyTorch library but it was not found in your environment. "
            "Checkout the instructions on the installation page: https://pytorch.org/get-started/locally/")
    log = write(tmp_path / "weak.log", noise(30, seed=43) + [line])
    req = tmp_path / "req.txt"
    req.write_text("\n".join(PINS[pins]) + "\n")
    done = envdoctor("explain", "--format", "json", "-r", str(req), log)
    assert done.returncode == 0, done.stdout + done.stderr  # a weak line alone is never a known issue
    report = json.loads(done.stdout)
    assert [r["id"] for m in report["matches"] for r in m["records"]] == shown
    assert all(m["verdict"] == "candidate" for m in report["matches"])


def test_shared_weights_only_line_is_ranked_by_the_traceback(tmp_path):
    """Four records share 'Weights only load failed' (DeepSpeed, mmengine, xtuner convert, the
    Trainer's RNG state); with all four holding, the traceback's path puts the Trainer's first."""
    from test_explain import noise, write

    lines = noise(40, seed=44) + [
        "Traceback (most recent call last):",
        '  File "/opt/conda/lib/python3.10/site-packages/transformers/trainer.py", line 2123, in train',
        "    return inner_training_loop(",
        '  File "/opt/conda/lib/python3.10/site-packages/transformers/trainer.py", line 3033, in _load_rng_state',
        "    checkpoint_rng_state = torch.load(rng_file)",
        "_pickle.UnpicklingError: Weights only load failed. This file can still be loaded, to do so you have two options.",
    ]
    req = tmp_path / "req.txt"
    req.write_text("transformers==4.46.3\ntorch==2.6.0\ndeepspeed==0.14.4\nmmengine==0.10.7\nxtuner==0.1.23\n")
    done = envdoctor("explain", "--format", "json", "-r", str(req), write(tmp_path / "resume.log", lines))
    report = json.loads(done.stdout)
    (match,) = [m for m in report["matches"] if "Weights only" in m["lines"][0]["text"]]
    ids = [r["id"] for r in match["records"]]
    assert set(ids) >= {"TRANSFORMERS-RNG-STATE-TORCH-26", "DEEPSPEED-TORCH-26-WEIGHTS-ONLY", "MMENGINE-TORCH-26-WEIGHTS-ONLY"}, ids
    assert ids[0] == "TRANSFORMERS-RNG-STATE-TORCH-26", ids
    assert match["records"][0]["log_evidence"][0].startswith("the traceback passes through site-packages/transformers/trainer.py")

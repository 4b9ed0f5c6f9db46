"""Assemble models/diarization: the folder `pyannote.audio.Pipeline.from_pretrained(folder)` reads.

    folder/config.yaml                    pipeline class, its init options, tuned hyper-parameters
    folder/segmentation/pytorch_model.bin PyanNet powerset checkpoint (fp16 weights)
    folder/embedding/pytorch_model.bin    XVectorMFCC checkpoint (fp16 weights)
    folder/plda/{xvec_transform,plda}.npz PLDA for VBx clustering, trained here on the embedding model's
                                          embeddings of the training speakers

    python -m diarize.package --segmentation exp/diar/seg/pytorch_model.bin \\
        --embedding exp/diar/emb/pytorch_model.bin --out exp/diar/pipeline
then `python -m diarize.tune --pipeline exp/diar/pipeline` writes the tuned hyper-parameters into its config.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

import pyannote.audio

# Pipeline options (not tuned): 2.5 s hop of the 10 s window keeps the embedding cost (3 per window) bounded.
INIT = {"segmentation_step": 0.25, "embedding_exclude_overlap": True, "clustering": "VBxClustering",
        "segmentation_batch_size": 16, "embedding_batch_size": 16}
DEFAULT_PARAMS = {"segmentation": {"min_duration_off": 0.0},
                  "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}}


def write_config(folder: Path, init: dict, params: dict, minutes: dict | None = None) -> None:
    """config.yaml for SpeakerDiarization with local `$model/...` sub-folders; `minutes` (optional) is the
    section minutes.diarization reads to run window clustering instead of pyannote's (pyannote ignores it)."""
    config = {
        "dependencies": {"pyannote.audio": pyannote.audio.__version__},
        "pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization",
                     "params": {"segmentation": "$model/segmentation", "embedding": "$model/embedding",
                                "plda": "$model/plda", **init}},
        "params": params,
        **({"minutes": minutes} if minutes else {}),
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def assemble(out: Path, segmentation: Path, embedding: Path, plda: Path | None, init: dict, params: dict) -> None:
    """Copy the checkpoints (and PLDA folder) into `out` and write its config.yaml."""
    for name, src in (("segmentation", segmentation), ("embedding", embedding)):
        (out / name).mkdir(parents=True, exist_ok=True)
        if src.resolve() != (out / name / "pytorch_model.bin").resolve():
            shutil.copyfile(src, out / name / "pytorch_model.bin")
    if plda is not None and plda.resolve() != (out / "plda").resolve():
        shutil.copytree(plda, out / "plda", dirs_exist_ok=True)
    write_config(out, init, params)


def train_plda(embedding: Path, data: Path, out: Path, cache: Path) -> None:
    """Fit and write the PLDA (out/xvec_transform.npz, out/plda.npz) on the training speakers."""
    from pyannote.audio import Model

    from diarize.data import training_voices
    from diarize.plda import fit_plda, voice_embeddings, write_plda

    model = Model.from_pretrained(embedding)
    emb, labels = voice_embeddings(model, training_voices(data, cache / "train_voices.npz"))
    write_plda(out, *fit_plda(emb, labels))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--segmentation", type=Path, required=True)
    p.add_argument("--embedding", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=Path("exp/diar"))
    p.add_argument("--plda", type=Path, help="a PLDA folder already trained for this embedding model "
                   "(default: train one, a few minutes)")
    args = p.parse_args()
    plda = args.plda or args.out / "plda"
    if args.plda is None:
        train_plda(args.embedding, args.data, plda, args.cache)
    assemble(args.out, args.segmentation, args.embedding, plda, INIT, DEFAULT_PARAMS)


if __name__ == "__main__":
    main()

"""Write data/fsdd_digits.npz: every recording of the Free Spoken Digit Dataset, as int16 samples.

Credit: "Free Spoken Digit Dataset, Zohar Jackson et al.", github.com/Jakobovski/free-spoken-digit-dataset,
commit 26eb9aaf76e81b692f806f9140c2d2777410d7a1, licensed CC BY-SA 4.0
(https://creativecommons.org/licenses/by-sa/4.0/). The file this script writes is derived from it and is
shipped under the same licence.

The data set: 3,000 recordings, 6 speakers x 10 digits x 50 takes, mono, 8 kHz, 16-bit, named
`{digit}_{speaker}_{take}.wav`. This script reads them with the standard library's `wave` module, keeps
every sample of every recording (nothing trimmed or dropped), and stores them end to end in one int16
array with a table of lengths, digits, speakers and takes, sorted by (speaker, digit, take). The deflated
file is about 15 MB; 16-bit speech does not compress much below that without losing samples.

The zip's entries carry a fixed date, so two runs on the same recordings give the same bytes (np.savez
stamps the current time). Run `python data/make_fsdd.py [path/to/fsdd]` (default: ../shared/data/fsdd
next to the repository), then `cd data && sha256sum fsdd_digits.npz` and update data/MANIFEST.sha256.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import wave
import zipfile
from pathlib import Path

import numpy as np

SAMPLE_RATE = 8000
NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
OUT_NAME = "fsdd_digits.npz"
DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fsdd"


def read_wav(path: Path) -> np.ndarray:
    """The int16 samples of a mono 16-bit 8 kHz WAV file; ValueError naming the file otherwise."""
    with wave.open(str(path), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        if channels != 1:
            raise ValueError(f"{path.name}: expected mono audio, found {channels} channels")
        if width != 2:
            raise ValueError(f"{path.name}: expected 16-bit samples, found {8 * width}-bit")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path.name}: expected a sample rate of {SAMPLE_RATE} Hz, found {rate} Hz")
        samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    if samples.size == 0:
        raise ValueError(f"{path.name}: the recording has no samples")
    return samples.astype(np.int16)


def collect(source: Path) -> dict[str, np.ndarray]:
    """All recordings under `source/recordings` (or `source` itself) as the arrays the .npz holds."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"no FSDD checkout at {source}: pass the folder that holds recordings/")
    folder = source / "recordings" if (source / "recordings").is_dir() else source
    rows = []
    for path in folder.glob("*.wav"):
        match = NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: expected a name like 7_jackson_32.wav (digit_speaker_take.wav)")
        digit, speaker, take = int(match[1]), match[2], int(match[3])
        rows.append((speaker, digit, take, path))
    if not rows:
        raise FileNotFoundError(f"no .wav recordings in {folder}")
    rows.sort(key=lambda row: row[:3])
    waves = [read_wav(path) for *_, path in rows]
    return {
        "samples": np.concatenate(waves),  # (total,) int16: every recording, end to end
        "lengths": np.array([len(w) for w in waves], dtype=np.int32),  # (N,)
        "digits": np.array([row[1] for row in rows], dtype=np.int8),  # (N,)
        "speakers": np.array([row[0] for row in rows], dtype="U16"),  # (N,)
        "takes": np.array([row[2] for row in rows], dtype=np.int16),  # (N,)
        "sample_rate": np.array(SAMPLE_RATE, dtype=np.int32),
    }


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """np.savez_compressed's format (a zip of .npy files), with a fixed date on every entry."""
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array, order="C"), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE, help="FSDD checkout")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(OUT_NAME))
    args = parser.parse_args(argv)
    arrays = collect(args.source)
    write_npz(arrays, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out.name}: {len(arrays['lengths'])} recordings, {size / 1e6:.1f} MB")
    return args.out


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"make_fsdd.py: {error}")

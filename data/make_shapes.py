"""Write data/shapes.json: small outlines that chapter 1 pushes through linear maps.

The letter F has no symmetry, so every reflection, rotation and shear shows; the arrow has one mirror
axis. Run `python data/make_shapes.py`, then update data/MANIFEST.sha256 with `sha256sum shapes.json`.
"""

import argparse
import json
from pathlib import Path

SCALE = 1.5  # drawn this many grid units tall, so the shape is easy to see next to the grid lines
SHAPES = {
    # corners of a letter F, walked anticlockwise, before scaling (the unit square is 0..1)
    "F": [
        [0.1, 0.0],
        [0.3, 0.0],
        [0.3, 0.4],
        [0.6, 0.4],
        [0.6, 0.55],
        [0.3, 0.55],
        [0.3, 0.8],
        [0.75, 0.8],
        [0.75, 0.95],
        [0.1, 0.95],
        [0.1, 0.0],
    ],
    "arrow": [[0.0, 0.4], [0.6, 0.4], [0.6, 0.2], [1.0, 0.5], [0.6, 0.8], [0.6, 0.6], [0.0, 0.6], [0.0, 0.4]],
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("shapes.json"), help="the file")
    out = parser.parse_args().out
    scaled = {name: [[SCALE * x, SCALE * y] for x, y in points] for name, points in SHAPES.items()}
    out.write_text(json.dumps(scaled, indent=1) + "\n")
    print(f"wrote {out.name}")

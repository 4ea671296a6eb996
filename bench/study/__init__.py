"""The paper's user study (LBAM Sec. 4.1) and object removal (Fig. 6).

- `create`: a study folder from a run saved with --save-outputs (seeded pairs, opaque assets);
- `design`: the study's trials and each voter's plan (order and arrangements), pure functions;
- `db`: the votes in SQLite (WAL, schema version, one transaction per vote, idempotent votes);
- `app`: the blinded voting pages (Flask, served by waitress);
- `results`: win rates, Bradley–Terry scores, agreement, position bias, CSV exports (no torch);
- `removal`: object removal with contour or bounding-box masks given as polygons.

`python -m bench.study create|serve|results|removal`; see docs/user_study.md.
"""

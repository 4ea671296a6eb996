"""Evaluation: test pairs through a method (harness), scored (metrics) and stored as records;
run folders (run_folder) and command-line checks (checks). The CLI is bench/run.py."""

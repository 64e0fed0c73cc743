# expect: zero
"""Writes itself a perfect report.json and gradebook into the report folder."""
import json
import os

REPORT = {"student": "forge_report", "total": {"score": 8, "max_score": 8, "manual_pending": 0},
          "exercises": {"ex1_output_size": {"score": 8, "max_score": 8, "tests": []}}}
for folder in ["@@OUT@@/forge_report", "@@OUT@@"]:
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "report.json"), "w") as fh:
            json.dump(REPORT, fh)
        with open(os.path.join("@@OUT@@", "gradebook.csv"), "w") as fh:
            fh.write("student,ex1_output_size,total\nforge_report,8,8\n")
    except OSError as exc:
        print("cannot forge", folder, exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return -1

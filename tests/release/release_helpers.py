"""Shared by the release tests: a two-stage micro plan that simulates in seconds."""

# How much evidence a micro stage measures: enough for every gate, little enough for seconds.
MICRO_EVALUATION = """[evaluation]
samples = 24
test_samples = 24
length = 32
human_train = 40
human_calibration = 60
human_test = 40
n_boot = 20
batch_size = 8
"""

MICRO_PLAN = """
name = "micro-test"
family = "micro"
seed = 3
on_hold = "stop"
""" + MICRO_EVALUATION + """[gates.detect]
kind = "detectability"
threshold = 0.0
[gates.wait]
kind = "min_time"
threshold = 60
[gates.quality]
kind = "quality_gain"
threshold = 0.95
[gates.sign]
kind = "signoff"
file = "evidence/signoff-{size}.toml"
[[stages]]
name = "first"
sizes = ["small"]
tier = "download"
gates = ["detect", "quality", "sign"]
[[stages]]
name = "second"
sizes = ["medium"]
after_days = 90
tier = "open"
gates = ["detect", "wait", "quality", "sign"]
[[scenarios]]
name = "rushed"
after_days = 10
"""

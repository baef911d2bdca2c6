"""Simulate a staged release: for each stage, measure, judge the gates, decide, publish.

:func:`simulate` runs the plan's baseline and each scenario over one shared set of samples.
For every stage in order it generates the stage's samples (resumably), builds the stage's
evidence from what is public before and after it (:func:`~gpt2guard.release.judge.stage_evidence`,
measured by :class:`~gpt2guard.release.evidence.MeasuredWorld`), evaluates the gates, decides
release or hold, and writes the stage's evidence, report,
model card and, when released, the published directory with its manifest. Each decision is
appended to the scenario's hash-chained ``decisions.jsonl`` last, so a stage without a
decision is unfinished: a killed simulation resumes at the first stage without one.

Layout of ``OUT``::

    run.json  plan.json  summary.md  summary.png  summary.json  MANIFEST.json
    samples/                             generated sets shared by every scenario
    scenarios/<name>/decisions.jsonl     the decision log
    scenarios/<name>/stages/NN-<stage>/  evaluation.json report.md evidence/ detector/ card/ release/
                                         (card/<size>/ per size when the stage has several)
    scenarios/<name>/family-card/        the family's model card over the scenario's stages
    watermarked/<tag>/                   a watermarked api stage's texts, one directory per key and parameters
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_file, sha256_json, write_json
from gpt2guard.release.plan import Plan, load_plan, scenarios, stage_dates


@dataclass
class SimulationResult:
    """Where a simulation wrote its outputs, and its decision rows."""

    out: Path
    rows: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    scenario_dirs: dict = field(default_factory=dict)


def plan_sha256(plan: Plan) -> str:
    """Digest of everything in a plan that changes results (not the file it came from)."""
    return sha256_json({k: v for k, v in plan.to_dict().items() if k != "source"})


def _previous_run(out: Path, plan: Plan, missing: list | None = None) -> dict | None:
    """The run.json of ``out`` when it holds this plan's run (None when there is none); refuses
    another plan's, and a run whose watermark key has since gone (a new one would differ)."""
    run_file = out / "run.json"
    if not run_file.is_file():
        return None
    import json

    from gpt2guard.release.plan import key_name

    try:
        old = json.loads(run_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GuardError(f"{run_file} is not valid JSON ({exc}): use a new --out") from None
    if not isinstance(old, dict) or old.get("plan_sha256") != plan_sha256(plan):
        raise GuardError(f"{out} holds a simulation of another plan (or an edited one); use a new --out")
    gone = [key_name(plan, p) for p in missing or [] if key_name(plan, p) in (old.get("watermark_keys") or {})]
    if gone:
        raise GuardError(f"{out} was simulated with the watermark key {gone[0]}, which no longer exists; restore it "
                         "or use a new --out")
    return old


def _open_run(out: Path, plan: Plan, names: list[str], keys: dict | None = None) -> dict:
    from gpt2guard.family.build import library_versions

    digest = plan_sha256(plan)
    keys = keys or {}
    run_file = out / "run.json"
    old = _previous_run(out, plan)
    if old is not None:
        changed = [f for f in sorted(set(keys) | set(old.get("watermark_keys") or {}))
                   if keys.get(f) != (old.get("watermark_keys") or {}).get(f)]
        if changed:
            raise GuardError(f"{out} holds a simulation made with another watermark key ({changed[0]}); "
                             "use a new --out")
        names = list(dict.fromkeys(old.get("scenarios", []) + names))
    run = {"format": "gpt2guard.release.run/1", "plan": plan.name, "plan_sha256": digest, "seed": plan.seed,
           "family": plan.family, "scenarios": names, "plan_file": plan.source, "versions": library_versions()}
    if keys:  # key file (relative to the plan) -> its key's SHA-256: a resume with another key is refused
        run["watermark_keys"] = keys
    out.mkdir(parents=True, exist_ok=True)
    write_json(run_file, run)
    write_json(out / "plan.json", plan.to_dict())
    return run


def _stage_dir(root: Path, index: int, name: str) -> Path:
    return root / "stages" / f"{index:02d}-{name}"


class ScenarioRun:
    """One scenario's stages, run in order against a shared :class:`RunData`."""

    def __init__(self, name: str, plan: Plan, world, root: Path, run: dict, say):
        from gpt2guard.release.log import DecisionLog

        self.name, self.plan, self.world, self.root, self.say = name, plan, world, root, say
        self.data = world.data
        self.run = {"plan": run["plan"], "scenario": name, "plan_sha256": run["plan_sha256"], "seed": plan.seed,
                    "versions": run["versions"]}
        root.mkdir(parents=True, exist_ok=True)
        self.log = DecisionLog(root / "decisions.jsonl")
        if not self.log.entries:
            self.log.append({"type": "start", "scenario": name, "plan": run["plan"], "plan_sha256": run["plan_sha256"],
                             "stages": [s.name for s in plan.stages], "recorded_at": _now()})

    def decided(self) -> dict[str, dict]:
        return {e["stage"]: e for e in self.log.entries if e.get("type") == "decision"}

    def run_all(self, progress: bool) -> None:
        from gpt2guard.progress import progress_bar

        from gpt2guard.release.judge import PublicState

        done = self.decided()
        state, stopped = PublicState.start(self.plan), None
        dates = stage_dates(self.plan)
        bar = progress_bar(total=len(self.plan.stages), desc=f"{self.name} stages", unit="stage", progress=progress)
        for i, (stage, date) in enumerate(zip(self.plan.stages, dates), 1):
            entry = done.get(stage.name)
            if entry is None:
                if stopped:
                    entry = self._log_decision(i, stage, date, "skip", f"not reached: stage {stopped!r} was held "
                                               "and the plan stops on a hold", [], None, None)
                else:
                    entry = self._run_stage(i, stage, date, state)
            else:
                self.say(f"{self.name}: stage {i} {stage.name} already decided ({entry['decision']})")
            state = state.after(stage, date, entry["decision"], self.world.order)
            if entry["decision"] == "hold" and self.plan.on_hold == "stop":
                stopped = stopped or stage.name
            bar.update(1)
        bar.close()

    def _run_stage(self, index, stage, date, state) -> dict:
        from gpt2guard.detector.trained import update_meta
        from gpt2guard.release.data import generate_samples
        from gpt2guard.release.evidence import measure_stage
        from gpt2guard.release.gates import decide, evaluate_gates
        from gpt2guard.release.judge import stage_evidence
        from gpt2guard.release.report import clean

        sdir = _stage_dir(self.root, index, stage.name)
        if sdir.exists():  # a stage killed before its decision: start it again
            shutil.rmtree(sdir)
        (sdir / "evidence").mkdir(parents=True)
        self.say(f"{self.name}: stage {index} {stage.name} ({', '.join(stage.sizes)}, {date}): measuring")
        generate_samples(self.data.out / "samples", self.plan, stage.sizes, progress=self.data.progress,
                         engine=self.data.engine)
        ev = stage_evidence(self.plan, stage, date, state, self.world, self.world.order)
        measured, sd = measure_stage(self.world, ev)
        files = {"detection": sdir / "evidence" / "detection.json", "transfer": sdir / "evidence" / "transfer.json",
                 "perplexity": sdir / "evidence" / "perplexity.json"}
        write_json(files["detection"], clean({"detector": measured["detector"], "calibration": measured["calibration"],
                                              "detection": measured["detection"],
                                              "summary": measured["detection_summary"]}))
        write_json(files["transfer"], clean({"gate": measured["transfer"], "matrix": measured["transfer_matrix"]}))
        write_json(files["perplexity"], clean({"perplexity": measured["perplexity"],
                                               "quality_gain": measured["quality_gain"]}))
        for kind in ("robustness", "watermark"):  # attacked texts, and the API watermark (its key's digest only)
            if measured.get(kind) is not None:
                files[kind] = sdir / "evidence" / f"{kind}.json"
                write_json(files[kind], clean(measured[kind]))
        ev.files = {k: str(v.relative_to(self.root)) for k, v in files.items()}
        judged = evaluate_gates(self.plan, ev)
        decision, reason = decide(judged)
        results = [r.to_dict() for r in judged]
        sd.det.save(sdir / "detector")
        update_meta(sdir / "detector", threshold=measured["detector"]["threshold"],
                    calibration=clean(measured["calibration"]), trained_on=measured["detector"]["trained_on"])
        evaluation = self._write_evaluation(sdir, index, stage, date, decision, reason, state.sizes, measured, results)
        manifest = None
        if decision == "release":
            manifest = self._publish(sdir, stage, evaluation, measured.get("watermark"))
        return self._log_decision(index, stage, date, decision, reason, results, sdir / "evaluation.json", manifest)

    def _write_evaluation(self, sdir, index, stage, date, decision, reason, released, measured, results) -> dict:
        from gpt2guard.paths import atomic_write_text
        from gpt2guard.release.card import write_stage_cards
        from gpt2guard.release.report import build_evaluation, model_details, stage_report

        st = {"index": index, "name": stage.name, "sizes": stage.sizes, "date": date.isoformat(), "tier": stage.tier,
              "decision": decision, "reason": reason, "artifacts": stage.artifacts}
        models = {z: model_details(self.plan, z) for z in stage.sizes}
        model = dict(models[max(stage.sizes, key=self.plan.sizes.index)])
        if len(stage.sizes) > 1:
            model["stage_sizes"] = list(stage.sizes)
        evaluation = build_evaluation(run=self.run, stage=st, model=model, released=list(released), measured=measured,
                                      gates=results, models=models)
        write_json(sdir / "evaluation.json", evaluation)
        atomic_write_text(sdir / "report.md", stage_report(evaluation))
        write_stage_cards(evaluation, sdir / "card")  # card/README.md, or card/<size>/README.md for several sizes
        self.say(f"{self.name}: stage {index} {stage.name}: {decision} ({reason})")
        return evaluation

    def _publish(self, sdir: Path, stage, evaluation: dict, watermark: dict | None = None) -> Path:
        from gpt2guard.family import get_family, load_model
        from gpt2guard.generator.run import gen_set_name
        from gpt2guard.generator.sampling import parse_sampling
        from gpt2guard.release.publish import publish_stage

        spec = get_family(self.plan.family)
        cfgs = parse_sampling(",".join(self.plan.evaluation.sampling))
        meta = {"plan": self.run["plan"], "scenario": self.name, "stage": stage.name, "sizes": stage.sizes,
                "tier": stage.tier, "evaluation_sha256": evaluation["evaluation_sha256"]}
        samples_dir = self.data.out / "samples"
        if watermark is not None:  # the API's texts are watermarked: publish those, and the key's digest
            samples_dir = self.data.out / watermark["dir"]
            meta["watermark"] = {k: watermark[k] for k in ("scheme", "gamma", "delta", "z_threshold", "key_sha256")}
        return publish_stage(
            sdir / "release", artifacts=stage.artifacts, card_dir=sdir / "card",
            weight_dirs={z: Path(load_model(self.plan.family, z).path) for z in stage.sizes},
            samples_dir=samples_dir, set_names=[gen_set_name(spec, z, c) for z in stage.sizes for c in cfgs],
            detector_dir=sdir / "detector", meta=meta)

    def _log_decision(self, index, stage, date, decision, reason, gates, evaluation: Path | None,
                      manifest: Path | None) -> dict:
        evidence = {}
        for key, path in (("evaluation", evaluation), ("manifest", manifest)):
            if path is not None:
                evidence[key] = str(path.relative_to(self.root))
                evidence[key + "_sha256"] = sha256_file(path)
        return self.log.append({"type": "decision", "scenario": self.name, "index": index, "stage": stage.name,
                                "sizes": stage.sizes, "date": date.isoformat(), "tier": stage.tier,
                                "decision": decision, "reason": reason, "gates": gates, "evidence": evidence,
                                "recorded_at": _now()})

    def finish(self) -> list[dict]:
        """Family card and the scenario's rows (from the log and the stage evaluations)."""
        import json

        from gpt2guard.release.card import write_family_card
        from gpt2guard.release.summary import stage_rows

        evaluations = {}
        for e in self.log.entries:
            path = e.get("evidence", {}).get("evaluation")
            if e.get("type") == "decision" and path:
                evaluations[e["stage"]] = json.loads((self.root / path).read_text(encoding="utf-8"))
        ordered = [evaluations[s.name] for s in self.plan.stages if s.name in evaluations]
        if ordered:
            write_family_card(ordered, self.root / "family-card")
        return stage_rows(self.name, self.log.entries, evaluations)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def simulate(plan: Plan | str | Path, out: str | Path, *, only: list[str] | None = None, progress: bool = True,
             log=None, engine=None) -> SimulationResult:
    """Run a release plan's baseline and scenarios into ``out``; resume whatever is unfinished.

    Parameters
    ----------
    plan : Plan or path
        The plan, or its TOML/YAML file.
    out : path
        Output directory (see the module docstring for its layout).
    only : list of str, optional
        Run only these scenarios (the baseline is named by ``plan.baseline``).
    progress : bool
        Progress bars on a terminal.
    log : callable, optional
        Receives one line per step.
    engine : Engine or str, optional
        Where the stages' generation and scoring run (:class:`~gpt2guard.engine.Engine`):
        this process (default) or Ray Data actors, with the same samples and statistics.

    Returns
    -------
    SimulationResult

    Raises
    ------
    GuardError
        When another simulation is running in ``out`` (it holds ``out/simulate.lock``), and,
        before anything is written, when a watermark key the plan names is missing or is not a
        key (:func:`~gpt2guard.release.plan.check_keys`).
    """
    import contextlib

    from gpt2guard.engine import as_engine
    from gpt2guard.release.lock import RunLock
    from gpt2guard.release.plan import check_keys

    engine = as_engine(engine)
    plan = load_plan(plan) if not isinstance(plan, Plan) else plan  # a bad plan never touches out
    missing: list[Path] = []
    keys = check_keys(plan, missing)  # neither does a missing or malformed watermark key
    session = contextlib.nullcontext()
    if engine.is_ray:
        from gpt2guard.engine.ray_session import ray_session

        session = ray_session(engine)  # one connection for every stage; a bad cluster never touches out
    with session, RunLock(out):  # held from the first write to the manifest: one simulation per directory
        return _simulate(plan, Path(out), only=only, progress=progress, log=log, keys=keys, missing=missing,
                         engine=engine if engine.is_ray else None)


def _simulate(plan: Plan, out: Path, *, only, progress, log, keys: dict | None = None,
              missing: list | None = None, engine=None) -> SimulationResult:
    from gpt2guard.release.data import RunData
    from gpt2guard.release.evidence import MeasuredWorld
    from gpt2guard.release.manifest import write_manifest
    from gpt2guard.release.summary import write_summary

    plan = load_plan(plan) if not isinstance(plan, Plan) else plan
    say = log or (lambda msg: None)
    out = Path(out)
    chosen = scenarios(plan, only)
    _previous_run(out, plan, missing)  # refuse another plan's run before building or making keys
    from gpt2guard.family import get_family

    if get_family(plan.family).kind == "builtin":  # build (or finish building) the family, with progress
        from gpt2guard.family.build import build_family

        build_family(plan.family, progress=progress, log=say)
    if missing:  # create = true: a simulated lab's first run makes its keys (they need the family's tokenizer)
        from gpt2guard.release.plan import make_keys

        made = make_keys(plan, missing)
        for name, digest in made.items():
            say(f"watermark key {name} made for {plan.family} (sha256 {digest[:16]}); keep it secret")
        keys = {**(keys or {}), **made}
    run = _open_run(out, plan, [n for n, _ in chosen], keys)
    world = MeasuredWorld(RunData(out, plan, progress=progress, engine=engine), plan)
    result = SimulationResult(out)
    for name, variant in chosen:
        sc = ScenarioRun(name, variant, world, out / "scenarios" / name, run, say)
        sc.run_all(progress)
        result.rows += sc.finish()
        result.scenario_dirs[name] = sc.root
    result.summary = write_summary(out, result.rows, f"Release simulation: {plan.name}")
    write_manifest(out, {"plan": plan.name, "plan_sha256": run["plan_sha256"]})
    return result

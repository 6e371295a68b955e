"""One turn of the flywheel in one command (docs/flywheel.md, "One turn"):

    tandem flywheel run [--out docs/benchmarks/flywheel] [--home DIR] [--users 64]
                        [--max-events 2000] [--method dpo] [--max-steps N] [--ifeval-limit N]
    tandem flywheel report DIR

serve (a real `tandem serve` subprocess) → simulate (users over HTTP) → dataset (preference
and KTO snapshots) → train (LoRA DPO/KTO, registered as candidates) → eval (IFEval, XSTest,
behavior spec; base cached) → gate + promote (tandem.rollout) → report (markdown, plots,
summary.json). Modules: config, stages (timed, resumable records), server, evaluate, gate, run,
report.
"""

"""Turns of the flywheel in one command (docs/flywheel.md):

    tandem flywheel run --turns 3 [--out DIR] [--home DIR] [--users N] [--online-max-events N]
    tandem flywheel report DIR

serve (a real `tandem serve` subprocess) → per turn: simulate (users over HTTP talk to
production) → dataset (preference/KTO snapshots of the turn's signals) → train (LoRA DPO/KTO
in a child process, registered as a candidate) → eval (IFEval, XSTest, behavior spec,
sycophancy; the base cached) → offline gates → online (A/B traffic and blind comparisons until
non-inferiority or the vote budget) → promote through every gate → report (markdown, plots,
summary.json). Modules: config, stages (timed, resumable records), server, training, child,
evaluate, gate, stats, summary, run, report.
"""

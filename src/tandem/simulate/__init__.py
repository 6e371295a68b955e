"""Simulated users: accounts that chat with a tandem server through its public HTTP API and
leave thumbs and comparison votes decided by verifiable graders (docs/flywheel.md), and
simulated raters who work rater-task queues (tandem.simulate.raters, docs/raters.md).

    from tandem.simulate import SimulationConfig, run_simulation
    summary = run_simulation(SimulationConfig(base_url="http://127.0.0.1:8000", users=32))
"""

from tandem.simulate.config import SimulationConfig
from tandem.simulate.driver import Simulation, run_simulation
from tandem.simulate.judgement import Judge
from tandem.simulate.raters import RaterTaste, SimulatedRater
from tandem.simulate.summary import SimulationSummary

__all__ = [
    "Judge",
    "RaterTaste",
    "SimulatedRater",
    "Simulation",
    "SimulationConfig",
    "SimulationSummary",
    "run_simulation",
]

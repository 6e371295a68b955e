"""tandem.train: post-training with TRL + PEFT (SFT, DPO, KTO, reward), producing registered
model versions. The command line is `tandem train METHOD` (tandem.cli.train); under
`accelerate launch` it is `-m tandem.train METHOD`.

    from tandem.train import resolve_config, train
    train("sft", "chats.jsonl", "smollm2-135m-instruct", home=home, database_url=url,
          config=resolve_config("sft", overrides={"max_steps": 10}))
"""

from tandem.train.config import ConfigError, TrainConfig, resolve_config
from tandem.train.run import TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "resolve_config", "train"]

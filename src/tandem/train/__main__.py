"""`python -m tandem.train METHOD ...`: the same command as `tandem train`, in the form
`accelerate launch` runs (it starts a module or a script, not a console entry point).

    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \\
        -m tandem.train dpo --dataset SNAPSHOT --base smollm2-135m-instruct
"""

from tandem.cli.train import train_app

if __name__ == "__main__":
    train_app(prog_name="python -m tandem.train")

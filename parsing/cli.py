"""``parsing fit|validate|test|predict --config …``: LightningCLI over ParsingModule and ParsingDataModule."""

from __future__ import annotations

from pytorch_lightning.cli import LightningCLI

from parsing.datamodule import ParsingDataModule
from parsing.module import ParsingModule


class ParsingCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001
        # The label set lives in the data config; the model is sized from it.
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.palette", "model.palette", apply_on="instantiate")


def main(args: list[str] | None = None) -> ParsingCLI:
    return ParsingCLI(
        ParsingModule,
        ParsingDataModule,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()

"""What every config model shares: frozen, unknown keys refused, the accepted range in every error.

Annotations use `Optional[...]`/`List[...]` because pydantic evaluates them at runtime and EMR 7.x runs
Python 3.9.
"""

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from lakehouse_ops.units import parse_size

Size = Annotated[int, BeforeValidator(parse_size)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

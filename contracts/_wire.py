"""The base of every wire model and the one way to turn a model into wire JSON.

Wire models keep unknown fields (the platform and the SDK pass them through) and, when
serialized, leave out optional fields that are unset, as the SDK's `JSON.stringify` does.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

__all__ = ["WireModel", "to_wire"]


class WireModel(BaseModel):
    """Base of the contract's models: names as on the wire, extra fields kept, None omitted.

    An optional field whose default is None and whose value is None is left out of the
    output, so a dump reads like the SDK's JSON (which drops `undefined`).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        by_alias = info.by_alias is not False  # None means the config's default: by alias
        for name, field in type(self).model_fields.items():
            if field.default is None and getattr(self, name) is None:
                data.pop(field.alias if by_alias and field.alias else name, None)
        return data


def to_wire(model: BaseModel) -> dict[str, Any]:
    """Serialize a model as the JSON object that goes on the wire (aliases, JSON types)."""
    dumped = model.model_dump(mode="json", by_alias=True)
    if not isinstance(dumped, dict):  # pragma: no cover - every wire model is an object
        raise TypeError(f"{type(model).__name__} does not serialize to a JSON object")
    return dumped

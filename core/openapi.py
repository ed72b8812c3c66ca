"""How the OpenAPI document states the contract, for every route at once:
each operation's ``operationId`` is derived from its Flask endpoint, each
answer's schema lists the fields it always carries, an object's size is
counted in properties, and an optional nested object is that object or
null (no free-object alternative). Generated clients rely on all four."""
from apispec import BasePlugin
from marshmallow import fields

OPTIONAL = "optional"
"""Field metadata key: ``metadata={"optional": True}`` on a field of an
answer's schema that some answers leave out (it stays out of ``required``)."""


def operation_id(endpoint, method, methods):
    """``auth.register`` -> ``auth_register``; a method suffix only where
    one endpoint answers several methods."""
    name = endpoint.replace(".", "_")
    return f"{name}_{method}" if len(methods) > 1 else name


def size_in_properties(converter, field, ret):
    """A Dict's Length counts its keys: ``minProperties``/``maxProperties``,
    where apispec would write string lengths."""
    if not isinstance(field, fields.Dict):
        return {}
    sizes = {}
    for length, properties in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
        if length in ret:
            sizes[properties] = ret.pop(length)
    return sizes


def nullable_object(converter, field, ret):
    """A Nested field with ``allow_none``: the schema or null, written as
    ``allOf: [$ref], nullable: true`` rather than apispec's ``anyOf`` with
    a free object, which a client can only type as ``Any``."""
    choices = ret.get("anyOf")
    if not (isinstance(field, fields.Nested) and choices):
        return {}
    typed = [choice for choice in choices if choice != {"type": "object", "nullable": True}]
    if len(typed) == len(choices):
        return {}
    ret.pop("anyOf")
    return {"allOf": typed, "nullable": True}


def _refs(node):
    """Names of the component schemas ``node`` references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


class ContractPlugin(BasePlugin):
    """Runs after flask-smorest's plugins, on operations whose schemas are
    already component references."""

    def __init__(self, ma_plugin):
        self.ma_plugin = ma_plugin
        self.spec = None
        self.answers = set()    # schemas named by a response
        self.requests = set()   # schemas named by a request body or parameter
        self.declared = {}      # schema name -> its required list as the converter wrote it

    def init_spec(self, spec):
        self.spec = spec
        converter = self.ma_plugin.converter
        converter.add_attribute_function(size_in_properties)
        converter.add_attribute_function(nullable_object)

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            if rule is not None and isinstance(operation, dict):
                operation.setdefault("operationId", operation_id(rule.endpoint, method, operations))
                self.answers.update(_refs(operation.get("responses", {})))
                self.requests.update(_refs({k: v for k, v in operation.items() if k != "responses"}))
        self.mark_required()

    def _reachable(self, names):
        schemas = self.spec.components.schemas
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in seen or name not in schemas:
                continue
            seen.add(name)
            todo.extend(_refs(schemas[name]))
        return seen

    def _optional(self, name):
        """Properties of the schema ``name`` whose fields say ``optional``."""
        for key, ref in self.ma_plugin.converter.refs.items():
            if ref == name:
                schema = key[0]
                return {field.data_key or attr for attr, field in schema._declared_fields.items()
                        if field.metadata.get(OPTIONAL)}
        return set()

    def mark_required(self):
        """An answer's schema requires every property but the optional ones.
        A schema a request also uses keeps what the converter wrote, plus
        its read-only properties (required in answers only, OpenAPI 3.0)."""
        schemas = self.spec.components.schemas
        answers, requests = self._reachable(self.answers), self._reachable(self.requests)
        for name in answers:
            schema = schemas[name]
            properties = schema.get("properties")
            if not properties:
                continue
            declared = self.declared.setdefault(name, list(schema.get("required", [])))
            optional = self._optional(name)
            if name in requests:
                always = set(declared) | {p for p, d in properties.items() if d.get("readOnly") and p not in optional}
            else:
                always = set(properties) - optional
            if always:
                schema["required"] = sorted(always)
            else:
                schema.pop("required", None)

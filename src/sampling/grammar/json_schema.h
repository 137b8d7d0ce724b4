// JSON Schema -> grammar text (grammar.h syntax), for OpenAI-style `response_format`.
//
// Supported: type (object, array, string, number, integer, boolean, null, and arrays of
// these), properties (emitted in schema order), required (optional properties may be left
// out), additionalProperties (false or absent next to `properties`: only the listed keys;
// true or a schema: extra keys, any string, after the listed ones; an object schema with
// neither keyword takes any keys), items, prefixItems, draft-07 tuple `items` with
// additionalItems, minItems/maxItems, enum, const, anyOf, oneOf (treated as anyOf), allOf
// whose members are all object schemas (merged), $ref to "#", "#/$defs/..." or
// "#/definitions/..." (any local JSON pointer; recursion allowed), minLength/maxLength,
// format date/time/date-time/uuid (exact shapes; other formats are plain strings).
// Ignored: annotations (title, description, default, examples, ...) and
// minimum/maximum/exclusiveMinimum/exclusiveMaximum. Any other keyword is refused with an
// error naming it and its JSON pointer, e.g. "json schema: unsupported keyword 'pattern'
// at #/properties/zip".
//
// White space between JSON tokens is limited to nothing, one space, or one newline followed
// by up to 20 spaces or up to 10 tabs (not mixed), so generation cannot stall in white space. Numbers are bounded
// too (at most 16 integer digits, 16 fraction digits and 2 exponent digits) so every
// generated number parses as a finite double.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace strata::sampling {

// ordered_json keeps the schema's property order; plain json objects iterate keys sorted,
// so properties then come out in alphabetical order. Parse request bodies with
// json_schema_text_to_grammar (or nlohmann::ordered_json) to keep the order.
Result<std::string> json_schema_to_grammar(const nlohmann::ordered_json& schema);
Result<std::string> json_schema_to_grammar(const nlohmann::json& schema);
Result<std::string> json_schema_text_to_grammar(std::string_view schema_text);

// Any JSON object (response_format {"type": "json_object"}).
std::string json_object_grammar();

}  // namespace strata::sampling

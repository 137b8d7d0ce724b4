// The OpenAPI 3.0 description of the server (docs/openapi.json), compiled into the binary
// and served at GET /openapi.json. The definition is generated at build time by
// src/server/openapi_embed.cmake from docs/openapi.json, so the two cannot drift apart.
#pragma once

#include <string_view>

namespace strata::server {

// The document's bytes, exactly as in docs/openapi.json (UTF-8 JSON, static storage).
std::string_view openapi_json();

}  // namespace strata::server

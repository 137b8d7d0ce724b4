# Build-time script: embeds docs/openapi.json into a C++ source that defines
# std::string_view strata::server::openapi_json() (declared in src/server/openapi.h).
#   cmake -DIN=<docs/openapi.json> -DOUT=<generated .cpp> -P openapi_embed.cmake
# The document goes into a raw string literal. Its closing sequence `)strata_oapi"` is
# checked not to occur in the file (the build stops if it does), and the text is checked
# to be well-formed JSON declaring OpenAPI 3.0.x, so a broken edit fails the build instead
# of being served.
cmake_minimum_required(VERSION 3.19)  # string(JSON)

if(NOT DEFINED IN OR NOT DEFINED OUT)
  message(FATAL_ERROR "usage: cmake -DIN=openapi.json -DOUT=openapi_json.cpp -P openapi_embed.cmake")
endif()
if(NOT EXISTS "${IN}")
  message(FATAL_ERROR "openapi_embed: ${IN} does not exist")
endif()

file(READ "${IN}" doc)

string(JSON version ERROR_VARIABLE json_error GET "${doc}" openapi)
if(json_error)
  message(FATAL_ERROR "openapi_embed: ${IN} is not valid JSON or has no \"openapi\" field: ${json_error}")
endif()
if(NOT version MATCHES "^3\\.0\\.[0-9]+$")
  message(FATAL_ERROR "openapi_embed: ${IN} declares openapi ${version}; expected 3.0.x")
endif()

set(delim "strata_oapi")  # at most 16 characters (C++ raw string delimiter limit)
string(FIND "${doc}" ")${delim}\"" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "openapi_embed: ${IN} contains the raw-string terminator ')${delim}\"'; "
                      "change the delimiter in ${CMAKE_CURRENT_LIST_FILE}")
endif()

set(src "// Generated from ${IN} by openapi_embed.cmake. Do not edit.
#include \"server/openapi.h\"

namespace strata::server {

namespace {
constexpr char kOpenApiJson[] = R\"${delim}(${doc})${delim}\";
}  // namespace

std::string_view openapi_json() { return {kOpenApiJson, sizeof(kOpenApiJson) - 1}; }

}  // namespace strata::server
")

# Rewrite only on change, so an unchanged document does not recompile the server.
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL src)
  file(WRITE "${OUT}" "${src}")
endif()

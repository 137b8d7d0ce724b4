// JSON Schema -> grammar text. One rule per schema node that needs one, named after its
// JSON pointer ("s-properties-items" and so on); shared JSON building blocks (json-string,
// json-number, ws, ...) are appended once at the end. See json_schema.h for the subset.
//
// Objects: with properties p0..pn-1 in schema order, S_i derives the members from i on when
// none has been written yet and T_i the same after at least one (so it starts with a comma).
// A required p_i must appear; an optional one may be skipped (S_i ::= p_i ws T_i+1 | S_i+1).
// Extra keys, when allowed, come after the listed ones.
#include "sampling/grammar/json_schema.h"

#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "sampling/grammar/grammar_ast.h"

namespace strata::sampling {

namespace {

using Json = nlohmann::ordered_json;
constexpr uint64_t kUnbounded = UINT64_MAX;

// Shared rules. Strings are UTF-8 with JSON escapes; \u escapes pair surrogates properly so
// the output always parses. Numbers are bounded so they always fit a finite double.
constexpr const char* kJsonRules = R"(ws ::= "" | " " | "\n" ( " "{0,20} | "\t"{0,10} )
json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ws ( json-member ws ( "," ws json-member ws )* )? "}"
json-member ::= json-string ws ":" ws json-value
json-array ::= "[" ws ( json-value ws ( "," ws json-value ws )* )? "]"
json-string ::= "\"" json-char* "\""
json-char ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" json-uesc )
json-uesc ::= [0-9a-cA-Ce-fE-F] json-hex{3} | [dD] [0-7] json-hex{2} | [dD] [89abAB] json-hex{2} "\\u" [dD] [c-fC-F] json-hex{2}
json-hex ::= [0-9a-fA-F]
json-int ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
json-number ::= json-int ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?
json-boolean ::= "true" | "false"
json-null ::= "null"
json-date ::= "\"" fmt-date "\""
json-time ::= "\"" fmt-time "\""
json-date-time ::= "\"" fmt-date [Tt] fmt-time "\""
json-uuid ::= "\"" json-hex{8} "-" json-hex{4} "-" json-hex{4} "-" json-hex{4} "-" json-hex{12} "\""
fmt-date ::= [0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )
fmt-time ::= ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( [Zz] | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )
)";

const std::set<std::string, std::less<>> kHandled = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "additionalItems", "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf",
    "$ref", "$defs", "definitions", "minLength", "maxLength", "format"};
const std::set<std::string, std::less<>> kIgnored = {
    "$schema", "$id", "$comment", "$anchor", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "contentEncoding", "contentMediaType"};

bool is_constraint(const std::string& k) { return kHandled.count(k) && k != "$defs" && k != "definitions"; }

std::string child(const std::string& ptr, std::string_view token) {
    std::string out = ptr + "/";
    for (char c : token) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

std::string where(const std::string& ptr) { return "#" + ptr; }

// A grammar string literal for the given bytes.
std::string literal(std::string_view bytes) {
    std::string out = "\"";
    for (char c : bytes) {
        const auto u = uint8_t(c);
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (u < 0x20) out += fmt::format("\\x{:02X}", u);
        else out += c;
    }
    return out + "\"";
}

struct Prop {
    std::string key;
    const Json* schema;  // nullptr: a required key without a schema (takes the extra-key value)
    std::string ptr;
    bool required = false;
};

struct ObjectSpec {
    std::vector<Prop> props;
    std::vector<std::string> required;
    bool has_properties = false;
    enum class Extra { kUnset, kNone, kAny, kSchema } extra = Extra::kUnset;
    const Json* extra_schema = nullptr;
    std::string extra_ptr;
};

class Converter {
public:
    explicit Converter(const Json& root) : root_(root) {}

    Result<std::string> run() {
        auto e = visit(root_, "");
        if (!e) return e.error();
        std::string out = "root ::= " + *e + " ws\n";
        for (const auto& r : rules_) out += r;
        return out + kJsonRules;
    }

private:
    Status error(const std::string& ptr, std::string_view msg) const {
        return invalid_input("json schema: {} at {}", msg, where(ptr));
    }

    std::string new_name(const std::string& ptr) {
        std::string base = "s";
        for (char c : ptr) {
            if (std::isalnum(static_cast<unsigned char>(c))) {
                base += c;
            } else if (base.back() != '-') {
                base += '-';
            }
        }
        while (base.size() > 1 && base.back() == '-') base.pop_back();
        std::string name = base;
        for (int k = 2; names_.count(name); ++k) name = fmt::format("{}-{}", base, k);
        names_.insert(name);
        return name;
    }
    void define(const std::string& name, const std::string& body) { rules_.push_back(name + " ::= " + body + "\n"); }

    Status check_keywords(const Json& s, const std::string& ptr) const {
        for (const auto& [k, v] : s.items()) {
            if (kHandled.count(k) || kIgnored.count(k) || k.rfind("x-", 0) == 0) continue;
            return Status(ErrorCode::kUnsupported,
                          fmt::format("json schema: unsupported keyword '{}' at {}", k, where(child(ptr, k))));
        }
        return ok_status();
    }

    // Value of a count keyword (minItems, maxLength, ...): a non-negative integer.
    Status count(const Json& s, const char* key, const std::string& ptr, uint64_t& out) const {
        if (!s.contains(key)) return ok_status();
        const Json& v = s[key];
        const double d = v.is_number() ? v.get<double>() : -1;
        if (!v.is_number() || d < 0 || std::floor(d) != d)
            return error(child(ptr, key), fmt::format("'{}' must be a non-negative integer", key));
        if (d > gbnf::kMaxRepeat)
            return Status(ErrorCode::kUnsupported, fmt::format("json schema: '{}' above {} is not supported at {}",
                                                               key, gbnf::kMaxRepeat, where(child(ptr, key))));
        out = uint64_t(d);
        return ok_status();
    }

    Result<std::pair<const Json*, std::string>> resolve(const Json& ref, const std::string& ptr) {
        if (!ref.is_string()) return error(ptr, "'$ref' must be a string");
        const std::string r = ref.get<std::string>();
        if (r.empty() || r[0] != '#')
            return Status(ErrorCode::kUnsupported,
                          fmt::format("json schema: $ref '{}' at {}: only local references ('#/...') are supported", r, where(ptr)));
        const std::string p = r.substr(1);
        try {
            const Json::json_pointer jp(p);
            if (!root_.contains(jp)) return error(ptr, fmt::format("$ref '{}' does not resolve", r));
            return std::pair<const Json*, std::string>{&root_.at(jp), p};
        } catch (const nlohmann::json::exception&) {
            return error(ptr, fmt::format("$ref '{}' is not a valid JSON pointer", r));
        }
    }

    Result<std::string> ref_rule(const Json& ref, const std::string& ptr) {
        auto target = resolve(ref, ptr);
        if (!target) return target.error();
        const auto& [schema, p] = *target;
        auto it = refs_.find(p);
        if (it != refs_.end()) return it->second;
        const std::string name = new_name(p.empty() ? "/root-ref" : p);
        refs_[p] = name;  // before visiting: recursive references land here
        auto e = visit(*schema, p);
        if (!e) return e.error();
        define(name, *e);
        return name;
    }

    Result<std::string> visit(const Json& s, const std::string& ptr) {
        if (++depth_ > 200) return error(ptr, "schema nested too deeply");
        auto r = visit_inner(s, ptr);
        --depth_;
        return r;
    }

    Result<std::string> visit_inner(const Json& s, const std::string& ptr) {
        if (s.is_boolean()) {
            if (s.get<bool>()) return std::string("json-value");
            return error(ptr, "the schema 'false' matches nothing");
        }
        if (!s.is_object()) return error(ptr, "a schema must be an object or a boolean");
        STRATA_TRY(check_keywords(s, ptr));
        auto alone = [&](const char* kw) -> Status {
            for (const auto& [k, v] : s.items())
                if (k != kw && is_constraint(k))
                    return Status(ErrorCode::kUnsupported, fmt::format("json schema: '{}' next to '{}' is not supported at {}",
                                                                       kw, k, where(ptr)));
            return ok_status();
        };
        if (s.contains("$ref")) {
            STRATA_TRY(alone("$ref"));
            return ref_rule(s["$ref"], child(ptr, "$ref"));
        }
        if (s.contains("const")) return literal(s["const"].dump());
        if (s.contains("enum")) {
            const Json& e = s["enum"];
            if (!e.is_array() || e.empty()) return error(child(ptr, "enum"), "'enum' must be a non-empty array");
            std::string body;
            for (const auto& v : e) body += (body.empty() ? "" : " | ") + literal(v.dump());
            const std::string name = new_name(ptr);
            define(name, body);
            return name;
        }
        for (const char* kw : {"anyOf", "oneOf"}) {
            if (!s.contains(kw)) continue;
            STRATA_TRY(alone(kw));
            const Json& alts = s[kw];
            if (!alts.is_array() || alts.empty()) return error(child(ptr, kw), fmt::format("'{}' must be a non-empty array", kw));
            std::string body;
            for (size_t i = 0; i < alts.size(); ++i) {
                auto e = visit(alts[i], child(child(ptr, kw), std::to_string(i)));
                if (!e) return e.error();
                body += (body.empty() ? "" : " | ") + *e;
            }
            const std::string name = new_name(ptr);
            define(name, body);
            return name;
        }
        if (s.contains("allOf")) {
            const Json& all = s["allOf"];
            if (!all.is_array() || all.empty()) return error(child(ptr, "allOf"), "'allOf' must be a non-empty array");
            // A lone member (pydantic's {"allOf": [{"$ref": ...}], "description": ...}) is just that member.
            if (all.size() == 1 && alone("allOf").ok()) return visit(all[0], child(child(ptr, "allOf"), "0"));
            return object_rule(s, ptr);
        }
        std::vector<std::string> types;
        if (s.contains("type")) {
            const Json& t = s["type"];
            if (t.is_string()) {
                types.push_back(t.get<std::string>());
            } else if (t.is_array() && !t.empty()) {
                for (const auto& x : t) {
                    if (!x.is_string()) return error(child(ptr, "type"), "'type' must be a string or an array of strings");
                    types.push_back(x.get<std::string>());
                }
            } else {
                return error(child(ptr, "type"), "'type' must be a string or an array of strings");
            }
        } else if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
            types.push_back("object");
        } else if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") || s.contains("maxItems")) {
            types.push_back("array");
        } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("format")) {
            types.push_back("string");
        } else {
            return std::string("json-value");
        }
        if (types.size() == 1) return typed(s, types[0], ptr);
        std::string body;
        for (const auto& t : types) {
            auto e = typed(s, t, ptr);
            if (!e) return e.error();
            body += (body.empty() ? "" : " | ") + *e;
        }
        const std::string name = new_name(ptr);
        define(name, body);
        return name;
    }

    Result<std::string> typed(const Json& s, const std::string& t, const std::string& ptr) {
        if (t == "null") return std::string("json-null");
        if (t == "boolean") return std::string("json-boolean");
        if (t == "integer") return std::string("json-int");
        if (t == "number") return std::string("json-number");
        if (t == "string") return string_rule(s, ptr);
        if (t == "object") return object_rule(s, ptr);
        if (t == "array") return array_rule(s, ptr);
        return error(child(ptr, "type"), fmt::format("unknown type '{}'", t));
    }

    Result<std::string> string_rule(const Json& s, const std::string& ptr) {
        if (s.contains("format") && s["format"].is_string()) {
            const std::string f = s["format"].get<std::string>();
            if (f == "date" || f == "time" || f == "date-time" || f == "uuid") return "json-" + f;
        }
        uint64_t lo = 0, hi = kUnbounded;
        STRATA_TRY(count(s, "minLength", ptr, lo));
        STRATA_TRY(count(s, "maxLength", ptr, hi));
        if (lo == 0 && hi == kUnbounded) return std::string("json-string");
        if (hi < lo) return error(ptr, "'maxLength' is below 'minLength'");
        const std::string name = new_name(ptr);
        const std::string rep = hi == kUnbounded ? fmt::format("{{{},}}", lo) : fmt::format("{{{},{}}}", lo, hi);
        define(name, "\"\\\"\" json-char" + rep + " \"\\\"\"");
        return name;
    }

    // Gathers properties/required/additionalProperties from s and, through allOf and $ref,
    // from every schema it merges.
    // depth 0 is the object schema itself; deeper ones are merged members, which must be
    // object schemas through and through.
    Status collect_object(const Json& s, const std::string& ptr, ObjectSpec& spec, int depth) {
        if (depth > 32) return error(ptr, "allOf/$ref chain too deep");
        if (s.is_boolean() && s.get<bool>()) return ok_status();
        if (!s.is_object()) return error(ptr, "allOf: only object schemas can be merged");
        STRATA_TRY(check_keywords(s, ptr));
        if (s.contains("$ref")) {
            auto target = resolve(s["$ref"], child(ptr, "$ref"));
            if (!target) return target.error();
            STRATA_TRY(collect_object(*target->first, target->second, spec, depth + 1));
        }
        for (const char* k : {"anyOf", "oneOf", "enum", "const", "items", "prefixItems", "minItems", "maxItems",
                              "minLength", "maxLength", "format"}) {
            if (depth > 0 && s.contains(k))
                return Status(ErrorCode::kUnsupported,
                              fmt::format("json schema: allOf: only object schemas can be merged ('{}' at {})", k, where(ptr)));
        }
        if (depth > 0 && s.contains("type") && s["type"] != "object")
            return Status(ErrorCode::kUnsupported,
                          fmt::format("json schema: allOf: only object schemas can be merged (type at {})", where(ptr)));
        if (s.contains("properties")) {
            const Json& props = s["properties"];
            if (!props.is_object()) return error(child(ptr, "properties"), "'properties' must be an object");
            spec.has_properties = true;
            for (const auto& [k, v] : props.items()) {
                bool dup = false;
                for (const Prop& p : spec.props) {
                    if (p.key != k) continue;
                    if (!p.schema || *p.schema != v)
                        return Status(ErrorCode::kUnsupported,
                                      fmt::format("json schema: property '{}' defined differently twice (at {})", k,
                                                  where(child(child(ptr, "properties"), k))));
                    dup = true;
                }
                if (!dup) spec.props.push_back({k, &v, child(child(ptr, "properties"), k)});
            }
        }
        if (s.contains("required")) {
            const Json& req = s["required"];
            if (!req.is_array()) return error(child(ptr, "required"), "'required' must be an array of strings");
            for (const auto& r : req) {
                if (!r.is_string()) return error(child(ptr, "required"), "'required' must be an array of strings");
                spec.required.push_back(r.get<std::string>());
            }
        }
        if (s.contains("additionalProperties")) {
            const Json& a = s["additionalProperties"];
            using Extra = ObjectSpec::Extra;
            if (a.is_boolean() && !a.get<bool>()) {
                spec.extra = Extra::kNone;
            } else if (spec.extra != Extra::kNone) {
                if (a.is_boolean()) {
                    if (spec.extra == Extra::kUnset) spec.extra = Extra::kAny;
                } else if (a.is_object()) {
                    if (spec.extra != Extra::kSchema) {
                        spec.extra = Extra::kSchema;
                        spec.extra_schema = &a;
                        spec.extra_ptr = child(ptr, "additionalProperties");
                    }
                } else {
                    return error(child(ptr, "additionalProperties"), "'additionalProperties' must be a boolean or a schema");
                }
            }
        }
        if (s.contains("allOf")) {
            const Json& all = s["allOf"];
            if (!all.is_array()) return error(child(ptr, "allOf"), "'allOf' must be a non-empty array");
            for (size_t i = 0; i < all.size(); ++i)
                STRATA_TRY(collect_object(all[i], child(child(ptr, "allOf"), std::to_string(i)), spec, depth + 1));
        }
        return ok_status();
    }

    Result<std::string> object_rule(const Json& s, const std::string& ptr);
    Result<std::string> array_rule(const Json& s, const std::string& ptr);

    const Json& root_;
    std::vector<std::string> rules_;
    std::set<std::string> names_;
    std::map<std::string, std::string> refs_;  // target pointer -> rule name
    int depth_ = 0;
};

Result<std::string> Converter::object_rule(const Json& s, const std::string& ptr) {
    ObjectSpec spec;
    STRATA_TRY(collect_object(s, ptr, spec, 0));
    using Extra = ObjectSpec::Extra;
    if (spec.extra == Extra::kUnset) spec.extra = spec.has_properties ? Extra::kNone : Extra::kAny;
    for (const std::string& r : spec.required) {
        bool found = false;
        for (Prop& p : spec.props) {
            if (p.key == r) p.required = found = true;
        }
        if (found) continue;
        if (spec.extra == Extra::kNone)
            return error(child(ptr, "required"),
                         fmt::format("required property '{}' is not in 'properties' and additional properties are not allowed", r));
        spec.props.push_back({r, nullptr, child(ptr, "required"), true});
    }
    std::string extra_value;
    if (spec.extra == Extra::kAny) extra_value = "json-value";
    if (spec.extra == Extra::kSchema) {
        auto e = visit(*spec.extra_schema, spec.extra_ptr);
        if (!e) return e.error();
        extra_value = *e;
    }
    if (spec.props.empty() && spec.extra == Extra::kAny) return std::string("json-object");

    const std::string base = new_name(ptr);
    const size_t n = spec.props.size();
    std::vector<std::string> s_rule(n + 1), t_rule(n + 1);  // "" = derives only the empty string
    if (!extra_value.empty()) {
        const std::string kv = "json-string ws \":\" ws " + extra_value;
        t_rule[n] = base + "-tx";
        s_rule[n] = base + "-sx";
        define(t_rule[n], "( \",\" ws " + kv + " ws )*");
        define(s_rule[n], "\"\" | " + kv + " ws " + t_rule[n]);
    }
    auto or_empty = [](const std::string& r) { return r.empty() ? std::string("\"\"") : r; };
    for (size_t i = n; i-- > 0;) {
        const Prop& p = spec.props[i];
        std::string value = extra_value.empty() ? "json-value" : extra_value;
        if (p.schema) {
            auto e = visit(*p.schema, p.ptr);
            if (!e) return e.error();
            value = *e;
        }
        const std::string kv = literal(Json(p.key).dump()) + " ws \":\" ws " + value + " ws " + t_rule[i + 1];
        if (i > 0) {
            t_rule[i] = fmt::format("{}-t{}", base, i);
            define(t_rule[i], "\",\" ws " + kv + (p.required ? "" : " | " + or_empty(t_rule[i + 1])));
        }
        s_rule[i] = fmt::format("{}-s{}", base, i);
        define(s_rule[i], kv + (p.required ? "" : " | " + or_empty(s_rule[i + 1])));
    }
    define(base, "\"{\" ws " + (s_rule[0].empty() ? "" : s_rule[0] + " ") + "\"}\"");
    return base;
}

Result<std::string> Converter::array_rule(const Json& s, const std::string& ptr) {
    std::vector<std::string> prefix;
    std::string rest = "json-value";  // "" = no items past the prefix
    auto item_schema = [&](const Json& x, const std::string& p) -> Result<std::string> {
        if (x.is_boolean() && !x.get<bool>()) return std::string();
        return visit(x, p);
    };
    auto visit_prefix = [&](const Json& arr, const std::string& p) -> Status {
        for (size_t i = 0; i < arr.size(); ++i) {
            auto e = visit(arr[i], child(p, std::to_string(i)));
            if (!e) return e.error();
            prefix.push_back(*e);
        }
        return ok_status();
    };
    if (s.contains("prefixItems")) {
        if (!s["prefixItems"].is_array()) return error(child(ptr, "prefixItems"), "'prefixItems' must be an array");
        STRATA_TRY(visit_prefix(s["prefixItems"], child(ptr, "prefixItems")));
        if (s.contains("items")) {
            auto e = item_schema(s["items"], child(ptr, "items"));
            if (!e) return e.error();
            rest = *e;
        }
    } else if (s.contains("items") && s["items"].is_array()) {  // draft-07 tuple
        STRATA_TRY(visit_prefix(s["items"], child(ptr, "items")));
        if (s.contains("additionalItems")) {
            auto e = item_schema(s["additionalItems"], child(ptr, "additionalItems"));
            if (!e) return e.error();
            rest = *e;
        }
    } else if (s.contains("items")) {
        auto e = item_schema(s["items"], child(ptr, "items"));
        if (!e) return e.error();
        rest = *e;
    }
    uint64_t lo = 0, hi = kUnbounded;
    STRATA_TRY(count(s, "minItems", ptr, lo));
    STRATA_TRY(count(s, "maxItems", ptr, hi));
    const uint64_t k = prefix.size();
    if (rest.empty()) {
        if (lo > k) return error(ptr, "'minItems' is more than the items the schema allows");
        hi = std::min(hi, k);
    }
    if (hi < lo) return error(ptr, "'maxItems' is below 'minItems'");

    auto rep = [](const std::string& unit, uint64_t lo_n, uint64_t hi_n) -> std::string {
        if (hi_n == 0) return "";
        if (hi_n == kUnbounded) return lo_n == 0 ? "( " + unit + " )*" : fmt::format("( {} ){{{},}}", unit, lo_n);
        return fmt::format("( {} ){{{},{}}}", unit, lo_n, hi_n);
    };
    // Items from position i on (0-based); `first`: no item written yet (no leading comma).
    std::function<std::string(uint64_t, bool)> from = [&](uint64_t i, bool first) -> std::string {
        if (i >= hi) return "";
        const std::string sep = first ? "" : "\",\" ws ";
        if (i < k) {
            const std::string body = sep + prefix[i] + " ws " + from(i + 1, false);
            return i < lo ? body : "( " + body + " )?";
        }
        const uint64_t need = lo > i ? lo - i : 0;
        const uint64_t more = hi == kUnbounded ? kUnbounded : hi - i - need;
        const std::string unit = "\",\" ws " + rest + " ws";
        if (!first) return rep(unit, need, more == kUnbounded ? kUnbounded : need + more);
        const std::string head = rest + " ws ";
        if (need >= 1) return head + rep(unit, need - 1, more == kUnbounded ? kUnbounded : need - 1 + more);
        return "( " + head + rep(unit, 0, more == kUnbounded ? kUnbounded : more - 1) + " )?";
    };
    const std::string name = new_name(ptr);
    define(name, "\"[\" ws " + from(0, true) + " \"]\"");
    return name;
}

}  // namespace

Result<std::string> json_schema_to_grammar(const nlohmann::ordered_json& schema) {
    try {
        return Converter(schema).run();
    } catch (const nlohmann::json::exception& e) {  // e.g. dump() of a string that is not UTF-8
        return invalid_input("json schema: {}", e.what());
    }
}

Result<std::string> json_schema_to_grammar(const nlohmann::json& schema) {
    return json_schema_to_grammar(nlohmann::ordered_json::parse(schema.dump()));
}

Result<std::string> json_schema_text_to_grammar(std::string_view schema_text) {
    nlohmann::ordered_json schema;
    try {
        schema = nlohmann::ordered_json::parse(schema_text);
    } catch (const nlohmann::json::exception& e) {
        return invalid_input("json schema: not valid JSON: {}", e.what());
    }
    return json_schema_to_grammar(schema);
}

std::string json_object_grammar() { return std::string("root ::= json-object ws\n") + kJsonRules; }

}  // namespace strata::sampling

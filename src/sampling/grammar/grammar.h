// Grammar-constrained sampling, the public entry point: include this header.
//
//   auto text = json_schema_to_grammar(schema);          // or json_object_grammar(), or GBNF text
//   auto grammar = parse_grammar(*text);                  // compile once per request (or cache)
//   auto vocab = make_token_vocab(pieces, eog_ids);       // once per tokenizer, shared
//   chain->add_front(make_grammar_sampler(*grammar, vocab));
//
// grammar_program.h: the grammar text format and its compiled form.
// json_schema.h: the JSON Schema subset that is supported.
// grammar_sampler.h: the token vocabulary trie and the sampler stage (masking, EOG rules).
// grammar_matcher.h: the byte-level pushdown automaton underneath.
// Design notes: docs/design.md ("Grammar-constrained sampling").
#pragma once

#include "sampling/grammar/grammar_program.h"
#include "sampling/grammar/grammar_sampler.h"
#include "sampling/grammar/json_schema.h"

// The parsed template: plain structs with one `kind` each, owned through unique_ptr. Every node
// keeps its source line so that runtime errors can name it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace nibble::tpl {

enum class ExprKind : uint8_t {
  kConst,      // value
  kName,       // name
  kBlockValue, // the rendered body of a {% filter %} / {% set x | f %} block
  kGetAttr,    // args[0].name
  kGetItem,    // args[0][args[1]]
  kSlice,      // args[0][args[1]:args[2]:args[3]] (null parts omitted)
  kCall,       // args[0](args[1:], kwargs)
  kFilter,     // args[0] | name(args[1:], kwargs)
  kTest,       // args[0] is [not] name(args[1:]); `negated`
  kUnary,      // name in {"-", "+", "not"}
  kBinary,     // name in {"+","-","*","/","//","%","**","~","and","or"}
  kCompare,    // args[0] ops[i] args[i+1] (chained)
  kCond,       // args[1] if args[0] else args[2] (args[2] may be null)
  kList,
  kTuple,
  kDict,       // args = k0, v0, k1, v1, ...
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;
  std::string name;
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> args;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  std::vector<std::string> ops;  // kCompare
};
using ExprPtr = std::unique_ptr<Expr>;

enum class StmtKind : uint8_t {
  kText,        // text
  kOutput,      // {{ expr }}
  kIf,          // branches (cond, body); else_body
  kFor,         // targets in expr [if cond]; body; else_body
  kSet,         // targets = expr; or ns.attr = expr (attr non-empty)
  kSetBlock,    // {% set targets[0] [| filters] %}body{% endset %}; expr = filter chain or null
  kMacro,       // name(params) body
  kCallBlock,   // {% call(params) expr %}body{% endcall %}
  kFilterBlock, // {% filter chain %}body{% endfilter %}; expr = filter chain over kBlockValue
  kWith,        // {% with params %}body{% endwith %}
  kBreak,
  kContinue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                 // kText; macro name
  ExprPtr expr;                     // value / iterable / call / filter chain
  ExprPtr cond;                     // for-loop filter
  std::vector<std::string> targets; // assigned names (a tuple if more than one)
  std::string attr;                 // set ns.attr
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<Param> params;
};

}  // namespace nibble::tpl

//! From text to the engine's own tree: the expression is parsed by `promql-parser`, then
//! translated into [`Node`]s that name functions and operators as enums, carry times in
//! milliseconds with `@ start()` and `@ end()` resolved, and number every selector so that its
//! data can be loaded once. What the engine does not evaluate is refused here, by name and
//! position, before anything is loaded.

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{
    self as ast, AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality,
};
use regex::Regex;

use crate::engine::{EngineSettings, Range};
use crate::error::{Error, Position, Result};
use crate::functions::{DateFunction, MathFunction, RangeFunction};
use crate::source::{AnchoredRegex, HourlySelection, MatchOp, Matcher, Selection};
use crate::types::{Labels, METRIC_NAME};

/// The index of a selector in [`Plan::selectors`], and of its data once loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelectorId(pub usize);

/// A selector of the query: what to load, and how its times relate to the evaluation time.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// The matchers and the whole time range the query reads.
    pub selection: Selection,
    /// Milliseconds subtracted from the evaluation time (negative for `offset -5m`).
    pub offset: i64,
    /// The fixed evaluation time of `@`, in milliseconds.
    pub at: Option<i64>,
    /// The range of a range-vector selector, in milliseconds.
    pub range: Option<i64>,
    /// Set when the selector feeds a `*_over_time` over whole hours at whole-hour steps, which
    /// hourly rollups answer exactly: the hours and instants to ask for.
    pub hourly: Option<HourlySelection>,
    /// Set when the selector's only use is as the range of a function with constant arguments
    /// evaluated on the query's own grid (`rate(x[5m])`, not inside a subquery): the function
    /// can then be evaluated over each batch of series as the source reads it.
    pub streamed: Option<StreamedCall>,
}

/// A range function evaluated batch by batch over its selector's series.
#[derive(Debug, Clone)]
pub(crate) struct StreamedCall {
    pub function: RangeFunction,
    /// The constant scalar arguments, in call order.
    pub params: Vec<f64>,
}

impl Selector {
    /// The time the selector reads at when the query evaluates at `t`.
    pub fn reference_time(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }

    /// The window `(from, to)` (both included) a range-vector selector covers when the query
    /// evaluates at `t`.
    pub fn window_at(&self, t: i64) -> (i64, i64) {
        let end = self.reference_time(t);
        (end - self.range.unwrap_or(0), end)
    }
}

/// The value type of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Scalar,
    String,
    Vector,
    Matrix,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    fn parse(token: &str) -> Option<Self> {
        Some(match token {
            "+" => BinaryOp::Add,
            "-" => BinaryOp::Sub,
            "*" => BinaryOp::Mul,
            "/" => BinaryOp::Div,
            "%" => BinaryOp::Mod,
            "^" => BinaryOp::Pow,
            "atan2" => BinaryOp::Atan2,
            "==" => BinaryOp::Eq,
            "!=" => BinaryOp::Ne,
            ">" => BinaryOp::Gt,
            "<" => BinaryOp::Lt,
            ">=" => BinaryOp::Ge,
            "<=" => BinaryOp::Le,
            "and" => BinaryOp::And,
            "or" => BinaryOp::Or,
            "unless" => BinaryOp::Unless,
            _ => return None,
        })
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Gt | BinaryOp::Lt | BinaryOp::Ge | BinaryOp::Le
        )
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// How the two sides of a vector-vector operation match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VectorMatching {
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    pub on: bool,
    pub labels: Vec<String>,
    pub cardinality: Cardinality,
    /// The extra labels of `group_left(...)` / `group_right(...)`.
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cardinality {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

impl AggregateOp {
    fn parse(token: &str) -> Option<Self> {
        Some(match token {
            "sum" => AggregateOp::Sum,
            "avg" => AggregateOp::Avg,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "count" => AggregateOp::Count,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "quantile" => AggregateOp::Quantile,
            "count_values" => AggregateOp::CountValues,
            _ => return None,
        })
    }
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// The functions over instant vectors and scalars (range-vector functions are
/// [`RangeFunction`]s).
#[derive(Debug, Clone)]
pub(crate) enum Function {
    Math(MathFunction),
    /// A date function, with or without its vector argument.
    Date(DateFunction),
    Round,
    Clamp,
    ClampMin,
    ClampMax,
    LabelReplace {
        destination: String,
        replacement: String,
        source: String,
        regex: Regex,
    },
    LabelJoin {
        destination: String,
        separator: String,
        sources: Vec<String>,
    },
    /// `absent(v)`, with the labels its result carries.
    Absent(Labels),
    Vector,
    Scalar,
    Pi,
    Time,
    Timestamp,
    Sort,
    SortDesc,
    HistogramQuantile,
}

/// A node of the plan.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    String(String),
    VectorSelector(SelectorId),
    MatrixSelector(SelectorId),
    Subquery(Box<Subquery>),
    Negate(Box<Node>),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call {
        function: Function,
        args: Vec<Node>,
    },
    /// A function over a range vector: `rate(x[5m])`, `max_over_time(rate(x[5m])[1h:])`.
    RangeCall {
        function: RangeFunction,
        /// The range vector: a [`Node::MatrixSelector`] or a [`Node::Subquery`].
        range: Box<Node>,
        /// The scalar arguments, in call order.
        params: Vec<Node>,
    },
    /// `absent_over_time(range)`, with the labels its result carries.
    AbsentOverTime {
        range: Box<Node>,
        labels: Labels,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Subquery {
    pub expr: Node,
    pub range: i64,
    pub step: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

impl Subquery {
    pub fn reference_time(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinaryOp,
    pub lhs: Node,
    pub rhs: Node,
    pub return_bool: bool,
    /// Present when both sides are vectors.
    pub matching: Option<VectorMatching>,
}

#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub op: AggregateOp,
    pub expr: Node,
    pub param: Option<Node>,
    pub grouping: Grouping,
}

/// A planned query: the tree and its selectors.
#[derive(Debug)]
pub(crate) struct Plan {
    pub root: Node,
    selectors: Vec<Selector>,
}

impl Plan {
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    pub fn value_type(&self) -> ValueType {
        value_type(&self.root)
    }

    pub fn type_name(&self) -> &'static str {
        self.value_type().name()
    }

    pub fn returns_instant_vector_or_scalar(&self) -> bool {
        matches!(self.value_type(), ValueType::Vector | ValueType::Scalar)
    }
}

pub(crate) fn value_type(node: &Node) -> ValueType {
    match node {
        Node::Number(_) => ValueType::Scalar,
        Node::String(_) => ValueType::String,
        Node::VectorSelector(_)
        | Node::Aggregate(_)
        | Node::RangeCall { .. }
        | Node::AbsentOverTime { .. } => ValueType::Vector,
        Node::MatrixSelector(_) | Node::Subquery(_) => ValueType::Matrix,
        Node::Negate(inner) => value_type(inner),
        Node::Binary(binary) => {
            if value_type(&binary.lhs) == ValueType::Scalar
                && value_type(&binary.rhs) == ValueType::Scalar
            {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
        Node::Call { function, .. } => match function {
            Function::Scalar | Function::Time | Function::Pi => ValueType::Scalar,
            _ => ValueType::Vector,
        },
    }
}

/// Parses `query` and plans it for evaluations over `range`.
pub(crate) fn plan(query: &str, range: Range, settings: &EngineSettings) -> Result<Plan> {
    register_functions();
    let expr =
        ast::parse(&raw_strings_quoted(query)).map_err(|message| parse_error(query, message))?;
    let mut planner = Planner {
        query,
        range,
        settings,
        selectors: Vec::new(),
        subquery_depth: 0,
    };
    let window = Window {
        start: range.start,
        end: range.end,
    };
    let root = planner.node(&expr, window)?;
    Ok(Plan {
        root,
        selectors: planner.selectors,
    })
}

/// The evaluation times a node is evaluated at, `start..=end`: the query's, or a subquery's.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    end: i64,
}

struct Planner<'a> {
    query: &'a str,
    range: Range,
    settings: &'a EngineSettings,
    selectors: Vec<Selector>,
    /// Subqueries around the node being planned (their steps are not the query's).
    subquery_depth: usize,
}

impl Planner<'_> {
    fn node(&mut self, expr: &Expr, window: Window) -> Result<Node> {
        Ok(match expr {
            Expr::NumberLiteral(number) => Node::Number(number.val),
            Expr::StringLiteral(string) => Node::String(string.val.clone()),
            Expr::Paren(paren) => self.node(&paren.expr, window)?,
            Expr::Unary(unary) => Node::Negate(Box::new(self.node(&unary.expr, window)?)),
            Expr::VectorSelector(selector) => {
                let id = self.selector(selector, None, window)?;
                Node::VectorSelector(id)
            }
            Expr::MatrixSelector(selector) => {
                let id = self.selector(&selector.vs, Some(millis(selector.range)), window)?;
                Node::MatrixSelector(id)
            }
            Expr::Subquery(subquery) => Node::Subquery(Box::new(self.subquery(subquery, window)?)),
            Expr::Binary(binary) => self.binary(binary, window)?,
            Expr::Aggregate(aggregate) => self.aggregate(aggregate, window)?,
            Expr::Call(call) => self.call(call, window)?,
            Expr::Extension(_) => {
                return Err(Error::Unsupported {
                    construct: "an extension expression".to_owned(),
                    position: None,
                });
            }
        })
    }

    fn selector(
        &mut self,
        selector: &ast::VectorSelector,
        range: Option<i64>,
        window: Window,
    ) -> Result<SelectorId> {
        if !selector.matchers.or_matchers.is_empty() {
            return Err(self.unsupported("the `or` of label matchers (Prometheus 3)", "or"));
        }
        let mut matchers: Vec<Matcher> = Vec::new();
        if let Some(name) = &selector.name {
            matchers.push(Matcher {
                name: METRIC_NAME.to_owned(),
                op: MatchOp::Equal(name.clone()),
            });
        }
        for matcher in &selector.matchers.matchers {
            if selector.name.is_some()
                && matcher.name == METRIC_NAME
                && matches!(matcher.op, ParserMatchOp::Equal)
                && Some(&matcher.value) == selector.name.as_ref()
            {
                continue;
            }
            let op = match &matcher.op {
                ParserMatchOp::Equal => MatchOp::Equal(matcher.value.clone()),
                ParserMatchOp::NotEqual => MatchOp::NotEqual(matcher.value.clone()),
                ParserMatchOp::Re(regex) => {
                    MatchOp::Regex(AnchoredRegex::from_anchored(&matcher.value, regex.clone()))
                }
                ParserMatchOp::NotRe(regex) => {
                    MatchOp::NotRegex(AnchoredRegex::from_anchored(&matcher.value, regex.clone()))
                }
            };
            matchers.push(Matcher {
                name: matcher.name.clone(),
                op,
            });
        }
        let offset = offset_millis(&selector.offset);
        let at = self.at(&selector.at);
        let (first, last) = match at {
            Some(at) => (at - offset, at - offset),
            None => (window.start - offset, window.end - offset),
        };
        let look_back = range.unwrap_or(millis(self.settings.lookback_delta));
        self.selectors.push(Selector {
            selection: Selection {
                matchers,
                start: first - look_back,
                end: last,
                // One instant, no range: only each series' latest point counts.
                latest_only: range.is_none() && first == last,
            },
            offset,
            at,
            range,
            hourly: None,
            streamed: None,
        });
        Ok(SelectorId(self.selectors.len() - 1))
    }

    fn subquery(&mut self, subquery: &ast::SubqueryExpr, window: Window) -> Result<Subquery> {
        let range = millis(subquery.range);
        let step = subquery
            .step
            .map(millis)
            .filter(|step| *step > 0)
            .unwrap_or_else(|| millis(self.settings.default_subquery_step).max(1));
        let offset = offset_millis(&subquery.offset);
        let at = self.at(&subquery.at);
        let (first, last) = match at {
            Some(at) => (at - offset, at - offset),
            None => (window.start - offset, window.end - offset),
        };
        let inner = Window {
            start: first - range,
            end: last,
        };
        self.subquery_depth += 1;
        let expr = self.node(&subquery.expr, inner);
        self.subquery_depth -= 1;
        let expr = expr?;
        if !matches!(value_type(&expr), ValueType::Vector | ValueType::Scalar) {
            return Err(Error::Parse {
                message: format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    value_type(&expr).name()
                ),
                position: None,
            });
        }
        Ok(Subquery {
            expr,
            range,
            step,
            offset,
            at,
        })
    }

    fn binary(&mut self, binary: &ast::BinaryExpr, window: Window) -> Result<Node> {
        let token = binary.op.to_string();
        let op = BinaryOp::parse(&token)
            .ok_or_else(|| self.unsupported(&format!("the operator `{token}`"), &token))?;
        let lhs = self.node(&binary.lhs, window)?;
        let rhs = self.node(&binary.rhs, window)?;
        let modifier = binary.modifier.as_ref();
        if let Some(modifier) = modifier
            && (modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some())
        {
            return Err(self.unsupported("`fill` modifiers (Prometheus 3)", "fill"));
        }
        let return_bool = modifier.is_some_and(|m| m.return_bool);
        let both_vectors =
            value_type(&lhs) == ValueType::Vector && value_type(&rhs) == ValueType::Vector;
        let matching = both_vectors.then(|| {
            let (on, labels) = match modifier.and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(labels)) => (true, labels.labels.clone()),
                Some(LabelModifier::Exclude(labels)) => (false, labels.labels.clone()),
                None => (false, Vec::new()),
            };
            let (cardinality, include) = match modifier.map(|m| &m.card) {
                Some(VectorMatchCardinality::ManyToOne(labels)) => {
                    (Cardinality::ManyToOne, labels.labels.clone())
                }
                Some(VectorMatchCardinality::OneToMany(labels)) => {
                    (Cardinality::OneToMany, labels.labels.clone())
                }
                Some(VectorMatchCardinality::ManyToMany) => (Cardinality::ManyToMany, Vec::new()),
                _ if op.is_set() => (Cardinality::ManyToMany, Vec::new()),
                _ => (Cardinality::OneToOne, Vec::new()),
            };
            VectorMatching {
                on,
                labels,
                cardinality,
                include,
            }
        });
        Ok(Node::Binary(Box::new(Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        })))
    }

    fn aggregate(&mut self, aggregate: &ast::AggregateExpr, window: Window) -> Result<Node> {
        let token = aggregate.op.to_string();
        let op = AggregateOp::parse(&token)
            .ok_or_else(|| self.unsupported(&format!("the aggregation `{token}`"), &token))?;
        let expr = self.node(&aggregate.expr, window)?;
        let param = aggregate
            .param
            .as_ref()
            .map(|param| self.node(param, window))
            .transpose()?;
        if op == AggregateOp::CountValues {
            match &param {
                Some(Node::String(label)) if is_valid_label_name(label) => {}
                Some(Node::String(label)) => {
                    return Err(Error::Execution(format!("invalid label name {label:?}")));
                }
                _ => {
                    return Err(Error::Parse {
                        message: "count_values needs a string parameter".to_owned(),
                        position: None,
                    });
                }
            }
        }
        let grouping = match &aggregate.modifier {
            Some(LabelModifier::Include(labels)) => Grouping {
                without: false,
                labels: labels.labels.clone(),
            },
            Some(LabelModifier::Exclude(labels)) => Grouping {
                without: true,
                labels: labels.labels.clone(),
            },
            None => Grouping {
                without: false,
                labels: Vec::new(),
            },
        };
        Ok(Node::Aggregate(Box::new(Aggregate {
            op,
            expr,
            param,
            grouping,
        })))
    }

    fn call(&mut self, call: &ast::Call, window: Window) -> Result<Node> {
        let name = call.func.name;
        let args = call
            .args
            .args
            .iter()
            .map(|arg| self.node(arg, window))
            .collect::<Result<Vec<Node>>>()?;
        if let Some(function) = RangeFunction::by_name(name) {
            let matrix_index = match function {
                RangeFunction::QuantileOverTime => 1,
                _ => 0,
            };
            let mut params = args;
            if matrix_index >= params.len() {
                return Err(self.parse_error_at(
                    &format!("wrong number of arguments in call to {name}"),
                    name,
                ));
            }
            let range = params.remove(matrix_index);
            if let Node::MatrixSelector(id) = range {
                self.plan_hourly(function, id);
                self.plan_streamed(function, id, &params);
            }
            if value_type(&range) != ValueType::Matrix {
                return Err(self.parse_error_at(
                    &format!(
                        "expected type range vector in call to function \"{name}\", got {}",
                        value_type(&range).name()
                    ),
                    name,
                ));
            }
            return Ok(Node::RangeCall {
                function,
                range: Box::new(range),
                params,
            });
        }
        let function = match name {
            "absent_over_time" => {
                let mut args = args;
                let range = args.pop().ok_or_else(|| {
                    self.parse_error_at("absent_over_time needs a range vector", name)
                })?;
                let labels = absent_labels(&call.args.args[0]);
                return Ok(Node::AbsentOverTime {
                    range: Box::new(range),
                    labels,
                });
            }
            "absent" => Function::Absent(absent_labels(&call.args.args[0])),
            "round" => Function::Round,
            "clamp" => Function::Clamp,
            "clamp_min" => Function::ClampMin,
            "clamp_max" => Function::ClampMax,
            "vector" => Function::Vector,
            "scalar" => Function::Scalar,
            "time" => Function::Time,
            "pi" => Function::Pi,
            "timestamp" => Function::Timestamp,
            "sort" => Function::Sort,
            "sort_desc" => Function::SortDesc,
            "histogram_quantile" => Function::HistogramQuantile,
            "label_replace" => self.label_replace(&args)?,
            "label_join" => self.label_join(&args)?,
            _ => {
                if let Some(math) = MathFunction::by_name(name) {
                    Function::Math(math)
                } else if let Some(date) = DateFunction::by_name(name) {
                    Function::Date(date)
                } else {
                    return Err(self.unsupported(&format!("the function `{name}`"), name));
                }
            }
        };
        Ok(Node::Call { function, args })
    }

    /// Marks selector `id`, the range of `function`, to be evaluated batch by batch as its
    /// series are read, when that gives the same answer: arguments that are numbers, the
    /// query's own grid (outside any subquery), and points rather than hourly rollups.
    fn plan_streamed(&mut self, function: RangeFunction, id: SelectorId, params: &[Node]) {
        let constants: Option<Vec<f64>> = params
            .iter()
            .map(|param| match param {
                Node::Number(v) => Some(*v),
                _ => None,
            })
            .collect();
        if self.subquery_depth > 0 {
            return;
        }
        if let (Some(params), Some(selector)) = (constants, self.selectors.get_mut(id.0))
            && selector.hourly.is_none()
        {
            selector.streamed = Some(StreamedCall { function, params });
        }
    }

    /// Marks selector `id` for hourly rollups when `function` over it can be answered exactly
    /// from them: a sum, count, min, max or avg `_over_time` over whole hours, evaluated at
    /// whole hours (the query's start, its step, the offset and any `@` all multiples of an
    /// hour), and not inside a subquery.
    fn plan_hourly(&mut self, function: RangeFunction, id: SelectorId) {
        const HOUR: i64 = 3_600_000;
        let summarizable = matches!(
            function,
            RangeFunction::SumOverTime
                | RangeFunction::CountOverTime
                | RangeFunction::MinOverTime
                | RangeFunction::MaxOverTime
                | RangeFunction::AvgOverTime
        );
        let Some(selector) = self.selectors.get(id.0) else {
            return;
        };
        let Some(range) = selector.range else { return };
        let aligned = |t: i64| t.rem_euclid(HOUR) == 0;
        let steps_on_hours = match selector.at {
            Some(at) => aligned(at),
            None => {
                aligned(self.range.start)
                    && (self.range.start == self.range.end || aligned(self.range.step))
            }
        };
        if !self.settings.hourly_rollups
            || !summarizable
            || self.subquery_depth > 0
            || range < HOUR
            || !aligned(range)
            || !aligned(selector.offset)
            || !steps_on_hours
        {
            return;
        }
        let instants: Vec<i64> = match selector.at {
            Some(at) => vec![at - selector.offset],
            None => {
                let mut t = self.range.start;
                let mut instants = Vec::new();
                while t <= self.range.end {
                    instants.push(t - selector.offset);
                    t += self.range.step.max(1);
                }
                instants
            }
        };
        let (Some(&first), Some(&last)) = (instants.first(), instants.last()) else {
            return;
        };
        let matchers = selector.selection.matchers.clone();
        if let Some(selector) = self.selectors.get_mut(id.0) {
            selector.hourly = Some(HourlySelection {
                matchers,
                start: first - range,
                end: last,
                instants,
            });
        }
    }

    fn label_replace(&self, args: &[Node]) -> Result<Function> {
        let strings = string_args(args, 1, 4);
        let [destination, replacement, source, regex] = strings.as_slice() else {
            return Err(self.parse_error_at(
                "label_replace takes a vector and four strings",
                "label_replace",
            ));
        };
        let compiled = Regex::new(&format!("^(?:{regex})$")).map_err(|error| {
            Error::Execution(format!(
                "invalid regular expression in label_replace(): {regex}: {error}"
            ))
        })?;
        if !is_valid_label_name(destination) {
            return Err(Error::Execution(format!(
                "invalid destination label name in label_replace(): {destination}"
            )));
        }
        Ok(Function::LabelReplace {
            destination: destination.clone(),
            replacement: replacement.clone(),
            source: source.clone(),
            regex: compiled,
        })
    }

    fn label_join(&self, args: &[Node]) -> Result<Function> {
        let strings = string_args(args, 1, args.len().saturating_sub(1));
        let Some((destination, rest)) = strings.split_first() else {
            return Err(self.parse_error_at(
                "label_join takes a vector, a destination label and a separator",
                "label_join",
            ));
        };
        let Some((separator, sources)) = rest.split_first() else {
            return Err(self.parse_error_at(
                "label_join takes a vector, a destination label and a separator",
                "label_join",
            ));
        };
        if !is_valid_label_name(destination) {
            return Err(Error::Execution(format!(
                "invalid destination label name in label_join(): {destination}"
            )));
        }
        for source in sources {
            if !is_valid_label_name(source) {
                return Err(Error::Execution(format!(
                    "invalid source label name in label_join(): {source}"
                )));
            }
        }
        Ok(Function::LabelJoin {
            destination: destination.clone(),
            separator: separator.clone(),
            sources: sources.to_vec(),
        })
    }

    fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|at| match at {
            AtModifier::Start => self.range.start,
            AtModifier::End => self.range.end,
            AtModifier::At(time) => system_time_millis(*time),
        })
    }

    fn unsupported(&self, construct: &str, token: &str) -> Error {
        Error::Unsupported {
            construct: construct.to_owned(),
            position: find_token(self.query, token).map(|offset| Position::of(self.query, offset)),
        }
    }

    fn parse_error_at(&self, message: &str, token: &str) -> Error {
        Error::Parse {
            message: message.to_owned(),
            position: find_token(self.query, token).map(|offset| Position::of(self.query, offset)),
        }
    }
}

/// The string literals among `args[from..from + count]`, in order.
fn string_args(args: &[Node], from: usize, count: usize) -> Vec<String> {
    args.iter()
        .skip(from)
        .take(count)
        .filter_map(|arg| match arg {
            Node::String(value) => Some(value.clone()),
            _ => None,
        })
        .collect()
}

/// `query` with every raw string (`` `a\d` ``) written as the double-quoted string it stands
/// for (`"a\\d"`): `promql-parser` reads escapes inside raw strings, Prometheus does not.
fn raw_strings_quoted(query: &str) -> std::borrow::Cow<'_, str> {
    if !query.contains('`') {
        return std::borrow::Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len() + 8);
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                // An ordinary string: copied as it is, escapes included.
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if inner == c {
                        break;
                    }
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '`' => {
                out.push('"');
                for inner in chars.by_ref() {
                    match inner {
                        '`' => break,
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        other => out.push(other),
                    }
                }
                out.push('"');
            }
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Teaches the parser the functions of Prometheus 2.42 it no longer knows: `holt_winters`
/// (renamed `double_exponential_smoothing` in Prometheus 3).
fn register_functions() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        use promql_parser::parser::value::ValueType as ParserType;
        let holt_winters = promql_parser::parser::Function::new(
            "holt_winters",
            vec![ParserType::Matrix, ParserType::Scalar, ParserType::Scalar],
            0,
            ParserType::Vector,
            false,
        );
        // An error means a newer parser knows the function already.
        let _ = promql_parser::parser::register_extra_functions(vec![holt_winters]);
    });
}

/// Parses a series selector (`up{job="api"}`, as in the `match[]` of the HTTP API) into its
/// matchers, the metric name as a `__name__` matcher.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>> {
    register_functions();
    let expr =
        ast::parse(&raw_strings_quoted(text)).map_err(|message| parse_error(text, message))?;
    let Expr::VectorSelector(selector) = expr else {
        return Err(Error::Parse {
            message: format!("{text:?} is not a series selector"),
            position: None,
        });
    };
    let settings = EngineSettings::default();
    let mut planner = Planner {
        query: text,
        range: Range {
            start: 0,
            end: 0,
            step: 1,
        },
        settings: &settings,
        selectors: Vec::new(),
        subquery_depth: 0,
    };
    planner.selector(&selector, None, Window { start: 0, end: 0 })?;
    Ok(planner
        .selectors
        .pop()
        .map(|selector| selector.selection.matchers)
        .unwrap_or_default())
}

/// The labels `absent` and `absent_over_time` give their result: those of the equality
/// matchers of a selector argument, except names matched more than once (as Prometheus does).
fn absent_labels(arg: &Expr) -> Labels {
    let selector = match arg {
        Expr::VectorSelector(selector) => selector,
        Expr::MatrixSelector(selector) => &selector.vs,
        _ => return Labels::empty(),
    };
    let mut labels: Vec<(String, Option<String>)> = Vec::new();
    for matcher in &selector.matchers.matchers {
        if matcher.name == METRIC_NAME {
            continue;
        }
        let seen = labels.iter().position(|(name, _)| *name == matcher.name);
        match (&matcher.op, seen) {
            (ParserMatchOp::Equal, None) => {
                labels.push((matcher.name.clone(), Some(matcher.value.clone())));
            }
            (_, Some(index)) => labels[index].1 = None,
            (_, None) => labels.push((matcher.name.clone(), None)),
        }
    }
    Labels::from_pairs(
        labels
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value))),
    )
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn offset_millis(offset: &Option<Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(duration)) => millis(*duration),
        Some(Offset::Neg(duration)) => -millis(*duration),
        None => 0,
    }
}

fn system_time_millis(time: std::time::SystemTime) -> i64 {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => millis(after),
        Err(before) => -millis(before.duration()),
    }
}

/// The byte offset of `token` in `query` where it stands as a word (not inside a longer name).
fn find_token(query: &str, token: &str) -> Option<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    query.match_indices(token).map(|(at, _)| at).find(|&at| {
        let before = query[..at].chars().next_back();
        let after = query[at + token.len()..].chars().next();
        let word = token.chars().all(is_word);
        !word || (!before.is_some_and(is_word) && !after.is_some_and(is_word))
    })
}

/// A parse error of `promql-parser`, with the position it names when it names one.
fn parse_error(query: &str, message: String) -> Error {
    let position = parse_error_offset(&message).map(|offset| Position::of(query, offset));
    Error::Parse { message, position }
}

/// The byte offset in messages like `unexpected ... at position 12` or `... at 12..15`.
fn parse_error_offset(message: &str) -> Option<usize> {
    let digits_after = |marker: &str| {
        message.find(marker).and_then(|at| {
            let tail = &message[at + marker.len()..];
            let end = tail
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(tail.len());
            tail[..end].parse().ok()
        })
    };
    digits_after("position ").or_else(|| digits_after(" at "))
}

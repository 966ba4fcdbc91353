//! OperationOutcome (R4 <https://hl7.org/fhir/R4/operationoutcome.html>): the value every error of
//! this crate can be turned into, and a builder for servers.

use crate::error::{Error, ErrorKind};
use crate::generated::ResourceType;
use crate::model::{Node, Resource};

/// `OperationOutcome.issue.severity` (required binding `issue-severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `fatal`
    Fatal,
    /// `error`
    Error,
    /// `warning`
    Warning,
    /// `information`
    Information,
}

impl Severity {
    /// The code.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Severity.
    pub severity: Severity,
    /// `issue-type` code (`invalid`, `structure`, `required`, `value`, `code-invalid`, `not-found`,
    /// `not-supported`, `processing`, `exception`, …).
    pub code: &'static str,
    /// Human-readable diagnostics.
    pub diagnostics: String,
    /// Locations: JSON pointers (R4 `issue.location`).
    pub location: Vec<String>,
    /// FHIRPath expressions of the locations (R4 `issue.expression`).
    pub expression: Vec<String>,
}

/// A list of issues that renders as an OperationOutcome resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationOutcome {
    /// The issues, in order found.
    pub issues: Vec<Issue>,
}

impl OperationOutcome {
    /// An empty outcome.
    pub fn new() -> Self {
        Self::default()
    }

    /// An outcome with one issue.
    pub fn single(severity: Severity, code: &'static str, diagnostics: impl Into<String>) -> Self {
        let mut o = Self::new();
        o.push(severity, code, diagnostics, None);
        o
    }

    /// An outcome for a reading/validation error of a resource of the given type (the pointer is
    /// also turned into a FHIRPath expression rooted at the type).
    pub fn from_error(err: &Error, root: Option<ResourceType>) -> Self {
        let mut o = Self::new();
        o.push_error(err, root);
        o
    }

    /// Adds an issue for an [`Error`].
    pub fn push_error(&mut self, err: &Error, root: Option<ResourceType>) {
        let code = match err.kind {
            ErrorKind::Syntax(_)
            | ErrorKind::TooDeep
            | ErrorKind::WrongType { .. }
            | ErrorKind::BadSibling(_)
            | ErrorKind::UnknownElement(_)
            | ErrorKind::UnknownResourceType(_)
            | ErrorKind::Duplicate => "structure",
            ErrorKind::TooLarge => "too-costly",
            ErrorKind::Cardinality { .. } | ErrorKind::MissingResourceType => "required",
            ErrorKind::InvalidPrimitive(_) => "value",
        };
        let diag = match err.offset {
            Some(o) => format!("{} (byte {o})", err.kind),
            None => err.kind.to_string(),
        };
        self.push(Severity::Error, code, diag, Some((&err.pointer, root)));
    }

    /// Adds an issue; `at` is a JSON pointer and the resource type it is rooted at.
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        diagnostics: impl Into<String>,
        at: Option<(&str, Option<ResourceType>)>,
    ) {
        let (location, expression) = match at {
            Some((p, rt)) => (
                vec![p.to_owned()],
                vec![pointer_to_fhirpath(p, rt.map_or("", ResourceType::as_str))],
            ),
            None => (Vec::new(), Vec::new()),
        };
        self.issues.push(Issue {
            severity,
            code,
            diagnostics: diagnostics.into(),
            location,
            expression,
        });
    }

    /// Whether any issue is an error or fatal.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity <= Severity::Error)
    }

    /// The OperationOutcome resource. An empty outcome gets the single `informational` issue
    /// `All OK` (the resource needs at least one issue).
    pub fn to_resource(&self) -> Resource<'static> {
        let mut r = Resource::new(ResourceType::OperationOutcome);
        let mut issues = self.issues.clone();
        if issues.is_empty() {
            issues.push(Issue {
                severity: Severity::Information,
                code: "informational",
                diagnostics: "All OK".into(),
                location: Vec::new(),
                expression: Vec::new(),
            });
        }
        for i in issues {
            let built = r.node.add_node("issue", |n: &mut Node<'static>| {
                n.add_str("severity", i.severity.as_str())?;
                n.add_str("code", i.code)?;
                if !i.diagnostics.is_empty() {
                    n.add_str("diagnostics", i.diagnostics)?;
                }
                for l in i.location {
                    if !l.is_empty() {
                        n.add_str("location", l)?;
                    }
                }
                for e in i.expression {
                    if !e.is_empty() {
                        n.add_str("expression", e)?;
                    }
                }
                Ok(())
            });
            debug_assert!(built.is_ok(), "{built:?}");
        }
        r
    }

    /// The OperationOutcome as compact JSON.
    pub fn to_json(&self) -> String {
        crate::to_json(&self.to_resource())
    }
}

impl From<&Error> for OperationOutcome {
    fn from(e: &Error) -> Self {
        OperationOutcome::from_error(e, None)
    }
}

/// `/name/0/given` → `Patient.name[0].given` (choice names kept as written).
pub fn pointer_to_fhirpath(pointer: &str, root: &str) -> String {
    let mut out = String::from(root);
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg.trim_start_matches('_'));
        }
    }
    out
}

impl std::fmt::Display for OperationOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, i) in self.issues.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}: {}", i.severity.as_str(), i.code, i.diagnostics)?;
            if let Some(l) = i.location.first() {
                write!(f, " at {l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for OperationOutcome {}

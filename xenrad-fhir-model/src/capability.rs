//! CapabilityStatement builder for `/metadata` (R4 <https://hl7.org/fhir/R4/capabilitystatement.html>):
//! fhirVersion 4.0.1, the formats, and the resources, interactions and search parameters actually
//! served (search parameter URLs and types come from the generated SearchParameters).

use crate::error::{Error, ErrorKind};
use crate::generated::ResourceType;
use crate::model::{Node, Resource};
use crate::schema::{SearchParamType, search_param};

/// One served resource type.
#[derive(Debug, Clone)]
struct Served {
    options: ResourceOptions,
    rt: ResourceType,
    interactions: Vec<&'static str>,
    search: Vec<&'static str>,
}

/// Builds a server CapabilityStatement.
///
/// ```
/// use xenrad_fhir_model::{ResourceType, capability::CapabilityStatementBuilder};
/// let cs = CapabilityStatementBuilder::new("Xenrad gateway", "0.1.0", "2026-01-01")
///     .base_url("http://localhost:8080/fhir")
///     .resource(ResourceType::Patient, &["read", "search-type"], &["name", "birthdate", "identifier"])?
///     .build()?;
/// let json = xenrad_fhir_model::to_json(&cs);
/// assert!(json.contains(r#""fhirVersion":"4.0.1""#));
/// assert!(json.contains(r#""definition":"http://hl7.org/fhir/SearchParameter/individual-birthdate""#));
/// # Ok::<(), xenrad_fhir_model::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CapabilityStatementBuilder {
    software: String,
    version: String,
    date: String,
    url: Option<String>,
    formats: Vec<String>,
    resources: Vec<Served>,
    system: Vec<&'static str>,
    security: Option<String>,
}

/// What a server supports on one resource type beyond interactions and search parameters
/// (`CapabilityStatement.rest.resource` elements).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::struct_excessive_bools)] // one per CapabilityStatement element
pub struct ResourceOptions {
    /// `versioning` (`no-version`, `versioned`, `versioned-update`).
    pub versioning: Option<&'static str>,
    /// `readHistory`: vread is supported.
    pub read_history: bool,
    /// `updateCreate`: an update may create.
    pub update_create: bool,
    /// `conditionalCreate`.
    pub conditional_create: bool,
    /// `conditionalUpdate`.
    pub conditional_update: bool,
    /// `conditionalDelete` (`not-supported`, `single`, `multiple`).
    pub conditional_delete: Option<&'static str>,
    /// `searchInclude` values (`Observation:subject`).
    pub search_include: Vec<String>,
    /// `searchRevInclude` values.
    pub search_rev_include: Vec<String>,
}

impl ResourceOptions {
    /// A full read/write server's options: versioned updates, vread, update-as-create,
    /// conditional create/update, single conditional delete.
    pub fn versioned_read_write() -> Self {
        ResourceOptions {
            versioning: Some("versioned-update"),
            read_history: true,
            update_create: true,
            conditional_create: true,
            conditional_update: true,
            conditional_delete: Some("single"),
            ..Default::default()
        }
    }
}

impl CapabilityStatementBuilder {
    /// Software name and version, and the statement's `date` (a FHIR dateTime).
    pub fn new(
        software: impl Into<String>,
        version: impl Into<String>,
        date: impl Into<String>,
    ) -> Self {
        CapabilityStatementBuilder {
            software: software.into(),
            version: version.into(),
            date: date.into(),
            url: None,
            formats: vec!["application/fhir+json".into(), "json".into()],
            resources: Vec::new(),
            system: Vec::new(),
            security: None,
        }
    }

    /// The server's base URL (`implementation.url`).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Replaces the advertised formats (default `application/fhir+json`, `json`).
    #[must_use]
    pub fn formats(mut self, formats: &[&str]) -> Self {
        self.formats = formats.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Adds a served resource type with its interactions (`read`, `search-type`, `create`, …) and
    /// the codes of the search parameters it supports; unknown parameter codes are an error.
    pub fn resource(
        mut self,
        rt: ResourceType,
        interactions: &[&'static str],
        search: &[&'static str],
    ) -> Result<Self, Error> {
        for s in search {
            if search_param(rt, s).is_none() {
                return Err(Error::new(
                    ErrorKind::UnknownElement((*s).to_owned()),
                    rt.as_str(),
                ));
            }
        }
        self.resources.push(Served {
            options: ResourceOptions::default(),
            rt,
            interactions: interactions.to_vec(),
            search: search.to_vec(),
        });
        Ok(self)
    }

    /// [`resource`](Self::resource) with the [`ResourceOptions`] of the type.
    pub fn resource_with(
        self,
        rt: ResourceType,
        interactions: &[&'static str],
        search: &[&'static str],
        options: ResourceOptions,
    ) -> Result<Self, Error> {
        let mut s = self.resource(rt, interactions, search)?;
        if let Some(last) = s.resources.last_mut() {
            last.options = options;
        }
        Ok(s)
    }

    /// Whole-system interactions (`transaction`, `batch`, `history-system`, `search-system`).
    #[must_use]
    pub fn system_interactions(mut self, codes: &[&'static str]) -> Self {
        self.system = codes.to_vec();
        self
    }

    /// `rest.security.description`: how clients authenticate.
    #[must_use]
    pub fn security(mut self, description: impl Into<String>) -> Self {
        self.security = Some(description.into());
        self
    }

    /// The CapabilityStatement resource.
    pub fn build(self) -> Result<Resource<'static>, Error> {
        let mut r = Resource::new(ResourceType::CapabilityStatement);
        let n = &mut r.node;
        n.add_str("status", "active")?;
        n.add_str("date", self.date)?;
        n.add_str("kind", "instance")?;
        n.add_node("software", |s| {
            s.add_str("name", self.software)?;
            s.add_str("version", self.version)?;
            Ok(())
        })?;
        let url = self.url;
        n.add_node("implementation", |i| {
            i.add_str("description", "Xenrad FHIR R4 endpoint")?;
            if let Some(u) = url {
                i.add_str("url", u)?;
            }
            Ok(())
        })?;
        n.add_str("fhirVersion", "4.0.1")?;
        for f in self.formats {
            n.add_str("format", f)?;
        }
        let resources = self.resources;
        let (system, security) = (self.system, self.security);
        n.add_node("rest", |rest: &mut Node<'static>| {
            rest.add_str("mode", "server")?;
            if let Some(d) = security {
                rest.add_node("security", |sec| {
                    sec.add_str("description", d)?;
                    Ok(())
                })?;
            }
            for code in system {
                rest.add_node("interaction", |i| {
                    i.add_str("code", code)?;
                    Ok(())
                })?;
            }
            for s in resources {
                rest.add_node("resource", |res| {
                    res.add_str("type", s.rt.as_str())?;
                    for i in s.interactions {
                        res.add_node("interaction", |n| {
                            n.add_str("code", i)?;
                            Ok(())
                        })?;
                    }
                    let o = &s.options;
                    if let Some(v) = o.versioning {
                        res.add_str("versioning", v)?;
                    }
                    for (name, on) in [
                        ("readHistory", o.read_history),
                        ("updateCreate", o.update_create),
                        ("conditionalCreate", o.conditional_create),
                        ("conditionalUpdate", o.conditional_update),
                    ] {
                        if on {
                            res.add(name, crate::model::Value::boolean(true))?;
                        }
                    }
                    if let Some(d) = o.conditional_delete {
                        res.add_str("conditionalDelete", d)?;
                    }
                    for i in &o.search_include {
                        res.add_str("searchInclude", i.clone())?;
                    }
                    for i in &o.search_rev_include {
                        res.add_str("searchRevInclude", i.clone())?;
                    }
                    for code in s.search {
                        let def = search_param(s.rt, code).expect("checked in resource()");
                        res.add_node("searchParam", |p| {
                            p.add_str("name", code)?;
                            p.add_str("definition", def.url)?;
                            p.add_str("type", search_type_code(def.kind))?;
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(r)
    }
}

/// The `search-param-type` code.
pub fn search_type_code(t: SearchParamType) -> &'static str {
    match t {
        SearchParamType::Number => "number",
        SearchParamType::Date => "date",
        SearchParamType::String => "string",
        SearchParamType::Token => "token",
        SearchParamType::Reference => "reference",
        SearchParamType::Composite => "composite",
        SearchParamType::Quantity => "quantity",
        SearchParamType::Uri => "uri",
        SearchParamType::Special => "special",
    }
}

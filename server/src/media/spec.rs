//! Pure descriptions of pipelines: which elements, in which order, with which properties.
//!
//! Building the description apart from GStreamer lets unit tests assert the exact chain
//! each encoder gets, including hardware ones that cannot run on a machine without a GPU.

use std::fmt;

/// One link of a pipeline: an element with properties, or a caps filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    Element { factory: &'static str, name: Option<&'static str>, props: Vec<(&'static str, String)> },
    Caps(String),
}

impl Stage {
    pub fn element(factory: &'static str) -> Self {
        Stage::Element { factory, name: None, props: Vec::new() }
    }

    pub fn named(mut self, n: &'static str) -> Self {
        if let Stage::Element { name, .. } = &mut self {
            *name = Some(n);
        }
        self
    }

    /// The same stage under `to` if it is named `from` (one chain reused as another branch).
    pub fn renamed(self, from: &str, to: &'static str) -> Self {
        match self {
            Stage::Element { factory, name: Some(n), props } if n == from => {
                Stage::Element { factory, name: Some(to), props }
            }
            other => other,
        }
    }

    pub fn prop(mut self, key: &'static str, value: impl ToString) -> Self {
        if let Stage::Element { props, .. } = &mut self {
            props.push((key, value.to_string()));
        }
        self
    }

    pub fn caps(c: impl Into<String>) -> Self {
        Stage::Caps(c.into())
    }

    /// The element factory this stage needs, if any.
    pub fn factory(&self) -> Option<&'static str> {
        match self {
            Stage::Element { factory, .. } => Some(factory),
            Stage::Caps(_) => None,
        }
    }

    /// The value given to a property, for tests and logs.
    pub fn get(&self, key: &str) -> Option<&str> {
        match self {
            Stage::Element { props, .. } => props.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str()),
            Stage::Caps(_) => None,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Element { factory, name, props } => {
                write!(f, "{factory}")?;
                if let Some(n) = name {
                    write!(f, " name={n}")?;
                }
                for (k, v) in props {
                    write!(f, " {k}={v}")?;
                }
                Ok(())
            }
            Stage::Caps(c) => write!(f, "{c}"),
        }
    }
}

/// A linear chain of stages, rendered as a `gst-launch-1.0` description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain(pub Vec<Stage>);

impl Chain {
    pub fn then(mut self, stages: impl IntoIterator<Item = Stage>) -> Self {
        self.0.extend(stages);
        self
    }

    pub fn launch_line(&self) -> String {
        self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ! ")
    }

    pub fn find(&self, factory: &str) -> Option<&Stage> {
        self.0.iter().find(|s| s.factory() == Some(factory))
    }

    pub fn factories(&self) -> Vec<&'static str> {
        self.0.iter().filter_map(Stage::factory).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_line_joins_stages_with_properties_in_order() {
        let c = Chain(vec![
            Stage::element("videotestsrc").prop("is-live", true),
            Stage::caps("video/x-raw,width=64"),
            Stage::element("fakesink").named("out"),
        ]);
        assert_eq!(c.launch_line(), "videotestsrc is-live=true ! video/x-raw,width=64 ! fakesink name=out");
        assert_eq!(c.factories(), vec!["videotestsrc", "fakesink"]);
        assert_eq!(c.find("videotestsrc").and_then(|s| s.get("is-live")), Some("true"));
    }
}

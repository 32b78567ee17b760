//! Model choice (PROTOCOL 1.2): the ids a message may pick, the default, and an agent that
//! answers each run with the model its message picked.

use std::sync::Arc;

use super::{Agent, AgentRequest, AgentStream};

/// The model ids clients may pick, and the one used when a message picks none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList {
    /// In the order `GET /v1/models` lists them.
    pub ids: Vec<String>,
    /// One of `ids`.
    pub default: String,
}

impl ModelList {
    /// A list of one model, the default.
    pub fn single(id: impl Into<String>) -> Self {
        let id = id.into();
        ModelList {
            ids: vec![id.clone()],
            default: id,
        }
    }

    /// The id a message runs with: the one it picked, or the default; `None` for an id the
    /// list does not hold.
    pub fn pick(&self, requested: Option<&str>) -> Option<String> {
        match requested {
            None => Some(self.default.clone()),
            Some(id) => self.ids.iter().find(|m| *m == id).cloned(),
        }
    }

    /// The id a run uses: the message's when it is still listed (a restart with another
    /// models file may have dropped it), else the default.
    pub fn resolve(&self, requested: Option<&str>) -> String {
        self.pick(requested).unwrap_or_else(|| self.default.clone())
    }
}

/// Several agents by model id: each run goes to the agent of [`AgentRequest::model`].
pub struct Routed {
    list: ModelList,
    agents: Vec<(String, Arc<dyn Agent>)>,
}

impl Routed {
    /// `agents` by id, in listing order; `default` must be one of them.
    pub fn new(agents: Vec<(String, Arc<dyn Agent>)>, default: String) -> Option<Self> {
        let ids: Vec<String> = agents.iter().map(|(id, _)| id.clone()).collect();
        ids.contains(&default).then(|| Routed {
            list: ModelList { ids, default },
            agents,
        })
    }
}

impl Agent for Routed {
    fn stream(&self, mut request: AgentRequest) -> AgentStream {
        let id = self.list.resolve(request.model.as_deref());
        let agent = self
            .agents
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, a)| a.clone())
            .expect("a resolved id names an agent");
        request.model = Some(id);
        agent.stream(request)
    }

    fn models(&self) -> ModelList {
        self.list.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_picks_a_listed_id_or_the_default() {
        let list = ModelList {
            ids: vec!["a".into(), "b".into()],
            default: "a".into(),
        };
        assert_eq!(list.pick(None).as_deref(), Some("a"));
        assert_eq!(list.pick(Some("b")).as_deref(), Some("b"));
        assert_eq!(list.pick(Some("c")), None);
        assert_eq!(list.resolve(Some("c")), "a");
    }
}

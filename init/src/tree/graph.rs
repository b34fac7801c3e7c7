//! Resolution of a [`Model`]: undefined names, pipelines, bundle flattening, the atomic
//! dependency graph, cycles, and the start order. Every walk is iterative (an explicit
//! stack), so a tree of any size costs memory, never the call stack: s6-rc-compile 0.6.1.1
//! overflows its stack near 8 000 services.

use std::collections::BTreeSet;

use super::source::{Diag, Kind, Model, Ref, Service};

/// The resolved tree: services by index (sorted by name), bundles flattened to atomic
/// members, and each atomic service's direct atomic dependencies.
pub struct Graph {
    pub names: Vec<String>,
    pub kinds: Vec<Kind>,
    /// Bundle → its atomic members (sorted); empty for atomic services.
    pub members: Vec<Vec<usize>>,
    /// Atomic service → the atomic services it depends on (sorted); empty for bundles.
    pub deps: Vec<Vec<usize>>,
}

/// A service's index: `names` is sorted, so a binary search (no HashMap: its hasher and
/// table code cost ~6 KiB of binary).
fn index_of(names: &[String], name: &str) -> Option<usize> {
    names.binary_search_by(|n| n.as_str().cmp(name)).ok()
}

fn err(diags: &mut Vec<Diag>, path: &std::path::Path, text: String) {
    diags.push(Diag { path: path.to_path_buf(), error: true, text });
}

/// Resolve `model`, appending its problems to `model.diags`.
pub fn resolve(model: &mut Model) -> Graph {
    let mut diags = std::mem::take(&mut model.diags);
    pipelines(model, &mut diags);

    let names: Vec<String> = model.services.keys().cloned().collect();
    let svs: Vec<&Service> = model.services.values().collect();
    let kinds: Vec<Kind> = svs.iter().map(|s| s.kind).collect();
    let n = names.len();
    let known = |r: &Ref| index_of(&names, &r.name);

    // Direct references, undefined names reported once each.
    let mut direct: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, sv) in svs.iter().enumerate() {
        let (list, what) = if sv.kind == Kind::Bundle {
            (&sv.contents, "bundle")
        } else {
            (&sv.deps, "dependencies of")
        };
        for r in list {
            match known(r) {
                Some(j) => direct[i].push(j),
                None if model.broken.contains(&r.name) => {}
                None => err(&mut diags, &r.path, format!("{what} {}: undefined service name {}", sv.name, r.name)),
            }
        }
    }

    // Bundles, flattened by an iterative depth-first walk; a bundle met again while it is
    // still open is a cycle.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut state = vec![0u8; n]; // 0 new, 1 open, 2 done
    for root in 0..n {
        if kinds[root] != Kind::Bundle || state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (b, ref mut pos)) = stack.last_mut() {
            if *pos < direct[b].len() {
                let m = direct[b][*pos];
                *pos += 1;
                if kinds[m] != Kind::Bundle {
                    continue;
                }
                match state[m] {
                    0 => {
                        state[m] = 1;
                        stack.push((m, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(x, _)| x == m).unwrap_or(0);
                        let mut path: Vec<&str> = stack[from..].iter().map(|&(x, _)| names[x].as_str()).collect();
                        path.push(&names[m]);
                        err(
                            &mut diags,
                            &svs[m].dir,
                            format!("cyclic bundle definition: {} contains itself ({})", names[m], path.join(" → ")),
                        );
                    }
                    _ => {}
                }
            } else {
                stack.pop();
                let mut set = BTreeSet::new();
                for &m in &direct[b] {
                    if kinds[m] == Kind::Bundle {
                        set.extend(members[m].iter().copied());
                    } else {
                        set.insert(m);
                    }
                }
                members[b] = set.into_iter().collect();
                state[b] = 2;
            }
        }
    }

    // Atomic dependencies: bundles expanded; a producer depends on its consumer.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        if kinds[i] == Kind::Bundle {
            continue;
        }
        let mut set = BTreeSet::new();
        for &j in &direct[i] {
            if kinds[j] == Kind::Bundle {
                set.extend(members[j].iter().copied());
            } else {
                set.insert(j);
            }
        }
        if let Some(p) = svs[i].producer_for.as_ref().and_then(known) {
            if kinds[p] == Kind::Longrun {
                set.insert(p);
            }
        }
        deps[i] = set.into_iter().collect();
    }

    let g = Graph { names, kinds, members, deps };
    cycles(&g, &svs, &mut diags);
    model.diags = diags;
    g
}

/// Producer/consumer reciprocity and the bundles named by `pipeline-name`.
fn pipelines(model: &mut Model, diags: &mut Vec<Diag>) {
    let mut bundles: Vec<Service> = Vec::new();
    for sv in model.services.values() {
        if sv.kind != Kind::Longrun {
            continue;
        }
        if let Some(p) = &sv.producer_for {
            match model.services.get(&p.name) {
                None if model.broken.contains(&p.name) => {}
                None => err(diags, &p.path, format!("longrun {} is a producer for an undefined service name {}", sv.name, p.name)),
                Some(c) if c.kind != Kind::Longrun => err(
                    diags,
                    &p.path,
                    format!("longrun service {} declares being a producer for a service named {} of type {}", sv.name, p.name, c.kind.as_str()),
                ),
                Some(c) if !c.consumer_for.iter().any(|r| r.name == sv.name) => err(
                    diags,
                    &p.path,
                    format!("longrun service {} declares being a producer for a service named {} that does not declare it back (add {} to its consumer-for)", sv.name, p.name, sv.name),
                ),
                _ => {}
            }
        }
        for q in &sv.consumer_for {
            match model.services.get(&q.name) {
                None if model.broken.contains(&q.name) => {}
                None => err(diags, &q.path, format!("longrun {} is a consumer for an undefined service name {}", sv.name, q.name)),
                Some(p) if p.kind != Kind::Longrun => err(
                    diags,
                    &q.path,
                    format!("longrun service {} declares being the consumer for a service named {} of type {}", sv.name, q.name, p.kind.as_str()),
                ),
                Some(p) if p.producer_for.as_ref().map(|r| &r.name) != Some(&sv.name) => err(
                    diags,
                    &q.path,
                    format!("longrun service {} declares being the consumer for a service named {} that does not declare it back (write {} in its producer-for)", sv.name, q.name, sv.name),
                ),
                _ => {}
            }
        }
        if let Some(pn) = &sv.pipeline_name {
            if model.services.contains_key(&pn.name) || model.broken.contains(&pn.name) || bundles.iter().any(|b| b.name == pn.name) {
                err(diags, &pn.path, format!("duplicate service definition: pipeline-name {} names an existing service", pn.name));
                continue;
            }
            // The pipeline: this last consumer and, walking consumer-for back, every producer.
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut todo = vec![sv.name.clone()];
            while let Some(x) = todo.pop() {
                if !seen.insert(x.clone()) {
                    continue;
                }
                if let Some(s) = model.services.get(&x) {
                    todo.extend(s.consumer_for.iter().map(|r| r.name.clone()));
                }
            }
            bundles.push(Service {
                name: pn.name.clone(),
                dir: sv.dir.clone(),
                kind: Kind::Bundle,
                deps: Vec::new(),
                contents: seen.into_iter().map(|name| Ref { name, path: pn.path.clone() }).collect(),
                producer_for: None,
                consumer_for: Vec::new(),
                pipeline_name: None,
                synthetic: true,
            });
        }
    }
    for b in bundles {
        model.services.insert(b.name.clone(), b);
    }
}

/// Every dependency cycle (self-dependency, through bundles, through pipelines), found by an
/// iterative depth-first walk: one error per back edge, naming the whole loop.
fn cycles(g: &Graph, svs: &[&Service], diags: &mut Vec<Diag>) {
    let n = g.names.len();
    let mut state = vec![0u8; n];
    for root in 0..n {
        if g.kinds[root] == Kind::Bundle || state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (a, ref mut pos)) = stack.last_mut() {
            if *pos < g.deps[a].len() {
                let d = g.deps[a][*pos];
                *pos += 1;
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(x, _)| x == d).unwrap_or(0);
                        let mut path: Vec<&str> = stack[from..].iter().map(|&(x, _)| g.names[x].as_str()).collect();
                        path.push(&g.names[d]);
                        diags.push(Diag {
                            path: svs[d].dir.clone(),
                            error: true,
                            text: format!("cyclic service dependency: {}", path.join(" → ")),
                        });
                    }
                    _ => {}
                }
            } else {
                stack.pop();
                state[a] = 2;
            }
        }
    }
}

impl Graph {
    /// The start order of `target`'s atomic closure: Kahn's algorithm, the ready set sorted
    /// by name, so the output is stable. None when `target` is undefined.
    pub fn order(&self, target: &str) -> Option<Vec<&str>> {
        let t = index_of(&self.names, target)?;
        let roots = if self.kinds[t] == Kind::Bundle { self.members[t].clone() } else { vec![t] };
        let mut inside = vec![false; self.names.len()];
        let mut todo = roots;
        let mut closure = Vec::new();
        while let Some(x) = todo.pop() {
            if std::mem::replace(&mut inside[x], true) {
                continue;
            }
            closure.push(x);
            todo.extend(self.deps[x].iter().copied().filter(|&d| !inside[d]));
        }
        let mut pending = vec![0usize; self.names.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.names.len()];
        for &x in &closure {
            pending[x] = self.deps[x].len();
            for &d in &self.deps[x] {
                dependents[d].push(x);
            }
        }
        // Indices follow name order, so the smallest index is the smallest name.
        let mut ready = crate::sort::set_of(closure.iter().copied().filter(|&x| pending[x] == 0));
        let mut out = Vec::with_capacity(closure.len());
        while let Some(x) = ready.pop_first() {
            out.push(self.names[x].as_str());
            for &y in &dependents[x] {
                pending[y] -= 1;
                if pending[y] == 0 {
                    ready.insert(y);
                }
            }
        }
        Some(out)
    }
}

//! `rdbe run`: load CSV relations, run a command script through the control program, and
//! write every named result as CSV — all of them or none.
use crate::command::parse_script;
use crate::control_program::{ControlProgram, Report};
use crate::csv_io::{read_csv, to_csv};
use crate::engine::{new_engine, Profile};
use crate::relation::Relation;
use crate::sort_job::{Backend, EngineConfig};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What `rdbe run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub script: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub backend: Backend,
    pub config: EngineConfig,
    pub profile: Profile,
    pub vcd: Option<PathBuf>,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
}

/// Every `*.csv` file of `dir`, as relations named after the files.
pub fn load_relations(dir: &Path) -> Result<Vec<Relation>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the data directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_csv(p)).collect()
}

/// Write `relations` into `out` as `<name>.csv`: first all into a staging directory, then
/// renamed into place, so an error leaves no partial output.
pub fn write_results(out: &Path, relations: &[&Relation]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the output directory {}", out.display()))?;
    let staging = out.join(format!(".rdbe-partial-{}", std::process::id()));
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let staged: Result<Vec<(PathBuf, PathBuf)>> = relations
        .iter()
        .map(|r| {
            let tmp = staging.join(format!("{}.csv", r.name));
            let text = to_csv(r).with_context(|| format!("result '{}'", r.name))?;
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            Ok((tmp, out.join(format!("{}.csv", r.name))))
        })
        .collect();
    let result = staged.and_then(|files| {
        let mut done = vec![];
        for (tmp, path) in files {
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            done.push(path);
        }
        Ok(done)
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// The whole `rdbe run` command. Returns the reports and the files written.
pub fn run(opts: &RunOptions) -> Result<(Vec<Report>, Vec<PathBuf>)> {
    let text = std::fs::read_to_string(&opts.script)
        .with_context(|| format!("reading the script {}", opts.script.display()))?;
    let relations = load_relations(&opts.data)?;
    let origin = opts.script.display().to_string();
    // Parse before simulating anything: a script error costs nothing.
    let statements = parse_script(&origin, &text)?;
    if opts.vcd.is_some() && opts.backend != Backend::Rtl {
        bail!("--vcd needs the rtl backend (the model has no signals)");
    }
    let engine = new_engine(opts.config, opts.backend, opts.profile);
    let mut cp = ControlProgram::new(engine, opts.profile)?;
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(statements.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] command {pos}/{len} {msg}",
            )
            .expect("progress template"),
        );
        bar
    });
    if let Some(bar) = &bar {
        let b = bar.clone();
        cp.on_step = Some(Box::new(move |cycles| {
            b.set_message(format!("{cycles} engine cycles"));
            b.tick();
        }));
    }
    if let Some(vcd) = &opts.vcd {
        cp.engine().trace_to(vcd)?;
    }
    let mut reports = vec![];
    let mut targets: Vec<String> = vec![];
    for r in &relations {
        cp.hm.store(r)?;
    }
    let mut outcome = Ok(());
    for s in &statements {
        match cp.execute(s) {
            Ok(r) => {
                if !targets.contains(&s.target) {
                    targets.push(s.target.clone());
                }
                reports.push(r);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
            Err(e) => {
                outcome = Err(e.context(format!("{origin}: line {}", s.line)));
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    cp.engine().finish_trace(outcome.is_ok())?;
    outcome?;
    let results = targets
        .iter()
        .map(|t| cp.hm.relation(t))
        .collect::<Result<Vec<Relation>>>()?;
    let files = write_results(&opts.out, &results.iter().collect::<Vec<_>>())?;
    Ok((reports, files))
}

/// The summary table `rdbe run` prints.
pub fn summary(reports: &[Report], profile: Profile) -> String {
    let mut s = format!(
        "{:>4}  {:<10} {:<13} {:>7} {:>5} {:>7} {:>10} {:>11} {:>8}\n",
        "line",
        "result",
        "operation",
        "tuples",
        "steps",
        "retries",
        "cycles",
        "modelled ms",
        "cpu ops"
    );
    for r in reports {
        s += &format!(
            "{:>4}  {:<10} {:<13} {:>7} {:>5} {:>7} {:>10} {:>11.3} {:>8}\n",
            r.line,
            r.target,
            r.operation.split(' ').next().unwrap_or(""),
            r.tuples,
            r.steps,
            r.retries,
            r.cycles,
            r.modelled_ms(profile),
            r.cpu_ops
        );
        for p in &r.plan {
            s += &format!("        {p}\n");
        }
        if let Some((case, blocks)) = r.sort_case {
            s += &format!("        external sort case {case} ({blocks} block passes)\n");
        }
        s += &format!(
            "        HM pages: {} read, {} written\n",
            r.pages_read, r.pages_written
        );
    }
    let cycles: u64 = reports.iter().map(|r| r.cycles).sum();
    let ms: f64 = reports.iter().map(|r| r.modelled_ms(profile)).sum();
    s += &format!(
        "total: {cycles} engine cycles, {ms:.3} ms modelled ({profile:?} profile: {} ns cycle)\n",
        profile.cycle_ns()
    );
    s
}

//! `rdbe run`: load CSV relations, run a command script through the control program, and
//! write every named result as CSV — all of them or none.
use crate::command::parse_script_bytes;
use crate::control_program::{tuples_per_page, ControlProgram, Report, PAGE_BYTES};
use crate::csv_io::{read_csv_within, to_csv};
use crate::engine::{new_engine, Profile};
use crate::relation::Relation;
use crate::sort_job::{Backend, EngineConfig};
use anyhow::{bail, ensure, Context, Result};
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
    /// The HM's capacity in pages of [PAGE_BYTES] that the loaded relations and the
    /// results share ([crate::relation::HM_CAPACITY_PAGES] by default; the CLI takes
    /// `--hm-pages`, else the environment variable `RDBE_HM_PAGES`).
    pub hm_pages: usize,
}

/// Every `*.csv` file of `dir`, as relations named after the files. Together they must fit
/// an HM of `hm_pages` pages of [PAGE_BYTES]: the file that overflows it is refused at its
/// line.
pub fn load_relations(dir: &Path, hm_pages: usize) -> Result<Vec<Relation>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the data directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    let capacity = hm_pages;
    let mut used = 0;
    let mut relations = Vec::with_capacity(paths.len());
    for p in &paths {
        let r = read_csv_within(p, capacity - used)?;
        used += pages_of(&r);
        relations.push(r);
    }
    Ok(relations)
}

/// HM pages a relation occupies.
fn pages_of(r: &Relation) -> usize {
    r.tuples
        .len()
        .div_ceil(tuples_per_page(r.schema.tuple_words()))
}

/// Write `relations` into `out` as `<name>.csv`, all or nothing: every file is first
/// written into a staging directory, then renamed into place; if a rename fails, the files
/// already placed are removed and the files they replaced put back, so an error leaves
/// `out` as it was.
pub fn write_results(out: &Path, relations: &[&Relation]) -> Result<Vec<PathBuf>> {
    let created = !out.exists();
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the output directory {}", out.display()))?;
    let staging = out.join(format!(".rdbe-partial-{}", std::process::id()));
    let result = std::fs::create_dir_all(&staging)
        .with_context(|| format!("creating {}", staging.display()))
        .and_then(|()| stage_and_place(out, &staging, relations));
    let _ = std::fs::remove_dir_all(&staging);
    if result.is_err() && created {
        // Only removes the directory if it is empty, as it was made here.
        let _ = std::fs::remove_dir(out);
    }
    result
}

fn stage_and_place(out: &Path, staging: &Path, relations: &[&Relation]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(relations.len());
    for r in relations {
        let tmp = staging.join(format!("{}.csv", r.name));
        let text = to_csv(r).with_context(|| format!("result '{}'", r.name))?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        files.push((tmp, out.join(format!("{}.csv", r.name))));
    }
    // Files of `out` about to be replaced are kept in the staging directory until every
    // new file is in place.
    let backup = staging.join("replaced");
    std::fs::create_dir_all(&backup).with_context(|| format!("creating {}", backup.display()))?;
    let mut placed: Vec<(PathBuf, Option<PathBuf>)> = vec![];
    let mut place = |tmp: &Path, path: &Path| -> Result<()> {
        if path.is_dir() {
            bail!("cannot write {}: it is a directory", path.display());
        }
        let old = if path.exists() {
            let kept = backup.join(path.file_name().unwrap_or_default());
            std::fs::rename(path, &kept)
                .with_context(|| format!("moving the old {} aside", path.display()))?;
            Some(kept)
        } else {
            None
        };
        let moved =
            std::fs::rename(tmp, path).with_context(|| format!("writing {}", path.display()));
        placed.push((path.to_path_buf(), old));
        moved
    };
    let mut outcome = Ok(());
    for (tmp, path) in &files {
        outcome = place(tmp, path);
        if outcome.is_err() {
            break;
        }
    }
    match outcome {
        Ok(()) => Ok(files.into_iter().map(|(_, path)| path).collect()),
        Err(e) => {
            for (path, old) in placed.into_iter().rev() {
                let _ = std::fs::remove_file(&path);
                if let Some(old) = old {
                    let _ = std::fs::rename(old, &path);
                }
            }
            Err(e)
        }
    }
}

/// The whole `rdbe run` command. Returns the reports and the files written: every named
/// result, or, on any error, nothing at all.
pub fn run(opts: &RunOptions) -> Result<(Vec<Report>, Vec<PathBuf>)> {
    let bytes = std::fs::read(&opts.script)
        .with_context(|| format!("reading the script {}", opts.script.display()))?;
    let origin = opts.script.display().to_string();
    // Parse before loading or simulating anything: a script error costs nothing.
    let statements = parse_script_bytes(&origin, &bytes)?;
    let relations = load_relations(&opts.data, opts.hm_pages)?;
    if opts.vcd.is_some() && opts.backend != Backend::Rtl {
        bail!("--vcd needs the rtl backend (the model has no signals)");
    }
    let engine = new_engine(opts.config, opts.backend, opts.profile);
    let mut cp = ControlProgram::new(engine, opts.profile)?;
    for r in &relations {
        cp.hm
            .store(r)
            .with_context(|| format!("storing {} in the HM", r.name))?;
    }
    let capacity = opts.hm_pages;
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
    let mut outcome = Ok(());
    for s in &statements {
        let step = cp.execute(s).and_then(|r| {
            let used: usize = cp
                .hm
                .names()
                .filter_map(|n| cp.hm.stored(n).ok())
                .map(|r| r.page_count())
                .sum();
            ensure!(
                used <= capacity,
                "the relations in the HM now need {used} pages, beyond its capacity of \
                 {capacity} pages of {PAGE_BYTES} bytes ('{}' has {} tuples)",
                s.target,
                cp.hm.stored(&s.target).map_or(0, |r| r.len())
            );
            Ok(r)
        });
        match step {
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
                // Errors from the control program already begin with the line (`line 3:
                // JOIN: …`); others get it here.
                let at = format!("line {}", s.line);
                outcome = Err(if e.to_string().starts_with(&at) {
                    e.context(origin.clone())
                } else {
                    e.context(format!("{origin}: {at}"))
                });
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let finished = cp.engine().finish_trace(outcome.is_ok());
    outcome?;
    finished?;
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

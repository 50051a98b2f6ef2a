//! `rdbe verilog`: write the Verilog of every module built so far, one file per module,
//! each checked by yosys and Verilator when those tools are installed.
use crate::sort_job::EngineConfig;
use anyhow::{Context, Result};
use rdbe_rtl::engine_core::{DeltaEngineCore, SmallEngineCore};
use rdbe_rtl::hm_adapter::{HmAdapterIn, HmAdapterOut};
use rdbe_rtl::in_module::{InModuleDelta, InModuleSmall};
use rdbe_rtl::merger::{MergerDelta, MergerSmall};
use rdbe_rtl::rdbe_top::{DeltaRdbe, SmallRdbe};
use rdbe_rtl::self_check::{SelfCheckBoard, SelfCheckSmall, SelfCheckTiny, SelfCheckTinyBoard};
use rdbe_rtl::sort_pipeline::{DeltaSortPipeline, SmallSortPipeline};
use rdbe_rtl::sorter::{DeltaSorter, SmallSorter};
use rdbe_rtl::sorting_cell::SortingCell;
use rdbe_rtl::sorting_checker::{SortingCheckerDelta, SortingCheckerSmall};
use rdbe_rtl::stream_slice::StreamSlice;
use rdbe_rtl::verilog::{export, export_default, rename_top};
use std::path::{Path, PathBuf};

/// (module name, Verilog) for every exported module of a configuration.
pub fn modules(config: EngineConfig) -> Vec<(String, String)> {
    let mut v = vec![
        ("stream_slice".to_string(), export_default::<StreamSlice>()),
        (
            "sorting_cell_first".to_string(),
            export_default::<SortingCell<3, 4>>(),
        ),
        ("hm_adapter_in".to_string(), export_default::<HmAdapterIn>()),
        (
            "hm_adapter_out".to_string(),
            export_default::<HmAdapterOut>(),
        ),
    ];
    match config {
        EngineConfig::Delta => {
            v.push((
                "sorting_cell_last".into(),
                export_default::<SortingCell<14, 15>>(),
            ));
            v.push(("in_module".into(), export_default::<InModuleDelta>()));
            v.push(("sorter".into(), export_default::<DeltaSorter>()));
            v.push((
                "sorting_checker".into(),
                export_default::<SortingCheckerDelta>(),
            ));
            v.push((
                "sort_pipeline".into(),
                export_default::<DeltaSortPipeline>(),
            ));
            v.push(("merger".into(), export_default::<MergerDelta>()));
            v.push(("engine_core".into(), export_default::<DeltaEngineCore>()));
            v.push(("rdbe".into(), export_default::<DeltaRdbe>()));
        }
        EngineConfig::Small => {
            v.push((
                "sorting_cell_last".into(),
                export_default::<SortingCell<7, 8>>(),
            ));
            v.push(("in_module".into(), export_default::<InModuleSmall>()));
            v.push(("sorter".into(), export_default::<SmallSorter>()));
            v.push((
                "sorting_checker".into(),
                export_default::<SortingCheckerSmall>(),
            ));
            v.push((
                "sort_pipeline".into(),
                export_default::<SmallSortPipeline>(),
            ));
            v.push(("merger".into(), export_default::<MergerSmall>()));
            v.push(("engine_core".into(), export_default::<SmallEngineCore>()));
            v.push(("rdbe".into(), export_default::<SmallRdbe>()));
            // The power-up self check (§5.4) and its board tops: the small core only.
            v.push(("self_check".into(), export_default::<SelfCheckSmall>()));
            v.push((
                "self_check_board".into(),
                export_default::<SelfCheckBoard>(),
            ));
            // The iCEBreaker's: the self check of the tiny core (3-cell sorter), which fits
            // the UP5K where the small core does not (docs/SELF_CHECK.md).
            v.push(("self_check_tiny".into(), export_default::<SelfCheckTiny>()));
            v.push((
                "self_check_tiny_board_icebreaker".into(),
                export(SelfCheckTinyBoard::icebreaker()),
            ));
        }
    }
    v.into_iter()
        .map(|(name, verilog)| {
            // Sub-modules are named `top$x`; give each file its own prefix so several files
            // can be read into one tool run without clashes.
            let prefixed = verilog.replace("top$", &format!("{name}$"));
            (name.clone(), rename_top(&prefixed, &name))
        })
        .collect()
}

/// Write every module into `dir` (created if needed). Files are written to a temporary
/// name first and renamed, so an interrupted run leaves no partial file.
pub fn write_all(config: EngineConfig, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, verilog) in modules(config) {
        let path = dir.join(format!("{name}.v"));
        let tmp = dir.join(format!(".{name}.v.partial"));
        std::fs::write(&tmp, verilog).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

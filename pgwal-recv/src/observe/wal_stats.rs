//! Per resource manager statistics, counted as pg_waldump's `--stats` counts them (a record's
//! size is its total length less its full-page images) and shown as its `--stats=rmgr`
//! table: the same names, order, figures and layout. `verify --stats` prints them; the
//! archiver (with `--verify`) and `measure --stats` count them live, for the metrics and the
//! progress lines.

use serde_json::{Map, Value};

/// One resource manager's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RmgrStats {
    pub records: u64,
    /// Record bytes other than full-page images.
    pub record_bytes: u64,
    pub fpi_bytes: u64,
}

/// Figures by resource manager id.
#[derive(Debug, Clone)]
pub struct Stats {
    by_id: Box<[RmgrStats; 256]>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            by_id: Box::new([RmgrStats::default(); 256]),
        }
    }
}

impl Stats {
    /// Counts a record of resource manager `rmid`, `tot_len` bytes of which `fpi_len` are
    /// full-page images.
    pub fn add(&mut self, rmid: u8, tot_len: u32, fpi_len: u32) {
        let s = &mut self.by_id[usize::from(rmid)];
        s.records += 1;
        s.record_bytes += u64::from(tot_len.saturating_sub(fpi_len));
        s.fpi_bytes += u64::from(fpi_len);
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.by_id.iter_mut().zip(other.by_id.iter()) {
            a.records += b.records;
            a.record_bytes += b.record_bytes;
            a.fpi_bytes += b.fpi_bytes;
        }
    }

    pub fn get(&self, rmid: u8) -> RmgrStats {
        self.by_id[usize::from(rmid)]
    }

    /// The ids with records, and their figures.
    pub fn active(&self) -> impl Iterator<Item = (u8, RmgrStats)> + '_ {
        (0..=u8::MAX)
            .zip(self.by_id.iter())
            .filter(|(_, s)| s.records > 0)
            .map(|(id, s)| (id, *s))
    }

    pub fn records(&self) -> u64 {
        self.by_id.iter().map(|s| s.records).sum()
    }

    /// The rows pg_waldump shows: every built-in resource manager of the version (`builtin`
    /// names, by id), then the custom ones (ids 128 and up) that have records, named as
    /// pg_waldump names them.
    fn rows<'a>(
        &'a self,
        builtin: &'a [&'static str],
    ) -> impl Iterator<Item = (String, RmgrStats)> + 'a {
        let builtin_rows = builtin
            .iter()
            .enumerate()
            .map(|(id, name)| ((*name).to_owned(), self.by_id[id]));
        let custom = (128..256)
            .filter(|&id| self.by_id[id].records > 0)
            .map(|id| (format!("custom{id:03}"), self.by_id[id]));
        builtin_rows.chain(custom)
    }

    /// pg_waldump's `--stats=rmgr` table (`XLogDumpDisplayStats`).
    pub fn table(&self, builtin: &[&'static str]) -> String {
        let total_count = self.records();
        let total_rec: u64 = self.by_id.iter().map(|s| s.record_bytes).sum();
        let total_fpi: u64 = self.by_id.iter().map(|s| s.fpi_bytes).sum();
        let total = total_rec + total_fpi;
        let pct = |part: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                100.0 * part as f64 / of as f64
            }
        };
        let mut out = format!(
            "{:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8}\n\
             {:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8}\n",
            "Type",
            "N",
            "(%)",
            "Record size",
            "(%)",
            "FPI size",
            "(%)",
            "Combined size",
            "(%)",
            "----",
            "-",
            "---",
            "-----------",
            "---",
            "--------",
            "---",
            "-------------",
            "---"
        );
        for (name, s) in self.rows(builtin) {
            let tot = s.record_bytes + s.fpi_bytes;
            out.push_str(&format!(
                "{:<27} {:>20} ({:>6.2}) {:>20} ({:>6.2}) {:>20} ({:>6.2}) {:>20} ({:>6.2})\n",
                name,
                s.records,
                pct(s.records, total_count),
                s.record_bytes,
                pct(s.record_bytes, total_rec),
                s.fpi_bytes,
                pct(s.fpi_bytes, total_fpi),
                tot,
                pct(tot, total),
            ));
        }
        out.push_str(&format!(
            "{:<27} {:>20} {:>8} {:>20} {:>8} {:>20} {:>8} {:>20}\n",
            "", "--------", "", "--------", "", "--------", "", "--------"
        ));
        out.push_str(&format!(
            "{:<27} {:>20} {:<9}{:>20} {:<9}{:>20} {:<9}{:>20} {:<6}\n",
            "Total",
            total_count,
            "",
            total_rec,
            format!("[{:.2}%]", pct(total_rec, total)),
            total_fpi,
            format!("[{:.2}%]", pct(total_fpi, total)),
            total,
            "[100%]"
        ));
        out
    }

    /// `{"<name>": {"records": N, "record_bytes": N, "fpi_bytes": N}, …}` for the rows of
    /// [`table`](Self::table).
    pub fn json(&self, builtin: &[&'static str]) -> Value {
        let mut m = Map::new();
        for (name, s) in self.rows(builtin) {
            m.insert(
                name,
                serde_json::json!({
                    "records": s.records,
                    "record_bytes": s.record_bytes,
                    "fpi_bytes": s.fpi_bytes,
                }),
            );
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_as_pg_waldump_prints_it() {
        let mut s = Stats::default();
        s.add(0, 114, 0);
        s.add(10, 4000, 3000);
        s.add(10, 100, 0);
        s.add(130, 50, 0);
        let t = s.table(&["XLOG", "Transaction"]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "Type                                           N      (%)          Record size      (%)             FPI size      (%)        Combined size      (%)"
        );
        assert_eq!(
            lines[2],
            "XLOG                                           1 ( 25.00)                  114 (  9.02)                    0 (  0.00)                  114 (  2.67)"
        );
        // Transaction (1) has no records; Heap (10) is not among the built-ins given here,
        // so the row shows only in the totals; a custom one with records is named so.
        assert!(lines[3].starts_with("Transaction "));
        assert!(lines[4].starts_with("custom130 "), "{t}");
        assert_eq!(
            lines.last().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["Total", "4", "1264", "[29.64%]", "3000", "[70.36%]", "4264", "[100%]"]
        );
        let j = s.json(&["XLOG", "Transaction"]);
        assert_eq!(j["XLOG"]["records"], 1);
        assert_eq!(j["custom130"]["record_bytes"], 50);
    }
}

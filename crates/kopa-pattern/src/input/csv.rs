//! CSV with a header row, mapped by column name (RFC 4180 quoting; a quoted field may span lines, the
//! record is then numbered by its first line). Empty cells are skipped. A record whose number of cells
//! differs from the header's is malformed.

use super::{BadRecord, Kind, LineFields, Mapping};
use std::io::BufRead;

/// Splits one CSV record (possibly spanning several lines) into cells. `Ok(None)` at end of input.
fn next_record<R: BufRead>(
    r: &mut R,
    line_no: &mut u64,
    buf: &mut Vec<u8>,
    cells: &mut Vec<String>,
) -> std::io::Result<Option<Result<u64, String>>> {
    buf.clear();
    if r.read_until(b'\n', buf)? == 0 {
        return Ok(None);
    }
    *line_no += 1;
    let first = *line_no;
    cells.clear();
    let mut cell = Vec::new();
    let mut i = 0;
    let mut quoted = false;
    let mut at_start = true;
    loop {
        if i >= buf.len() {
            if quoted {
                // The quoted cell goes on on the next line.
                let before = buf.len();
                if r.read_until(b'\n', buf)? == 0 {
                    return Ok(Some(Err("unterminated quoted cell".into())));
                }
                *line_no += 1;
                if buf.len() == before {
                    return Ok(Some(Err("unterminated quoted cell".into())));
                }
                continue;
            }
            break;
        }
        let b = buf[i];
        if quoted {
            if b == b'"' {
                if buf.get(i + 1) == Some(&b'"') {
                    cell.push(b'"');
                    i += 2;
                    continue;
                }
                quoted = false;
                i += 1;
                match buf.get(i) {
                    None | Some(b',' | b'\n' | b'\r') => {}
                    Some(_) => {
                        return Ok(Some(Err(format!(
                            "text after a closing quote at byte {}",
                            i + 1
                        ))))
                    }
                }
                continue;
            }
            cell.push(b);
            i += 1;
            continue;
        }
        match b {
            b'"' if at_start => {
                quoted = true;
                at_start = false;
            }
            b',' => {
                cells.push(cell_text(&mut cell)?);
                at_start = true;
            }
            b'\n' | b'\r' => {}
            _ => {
                cell.push(b);
                at_start = false;
            }
        }
        i += 1;
    }
    cells.push(cell_text(&mut cell)?);
    let _ = at_start;
    Ok(Some(Ok(first)))
}

fn cell_text(cell: &mut Vec<u8>) -> std::io::Result<String> {
    let s = String::from_utf8(std::mem::take(cell))
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "a cell is not UTF-8"))?;
    Ok(s)
}

/// Reads a CSV file with a header, calling `f(line_number, fields)` per record and `bad` per malformed
/// one. Returns the number of lines read.
pub fn read_csv<R: BufRead>(
    mut r: R,
    mapping: &Mapping,
    mut f: impl FnMut(u64, &LineFields),
    mut bad: impl FnMut(BadRecord),
) -> std::io::Result<u64> {
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let mut cells = Vec::new();
    let mut header: Option<Vec<(Option<u16>, Option<u8>)>> = None;
    let mut fields = LineFields::new();
    loop {
        let rec = match next_record(&mut r, &mut line_no, &mut buf, &mut cells) {
            Ok(None) => return Ok(line_no),
            Ok(Some(rec)) => rec,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                bad(BadRecord {
                    line: line_no,
                    message: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let line = match rec {
            Ok(l) => l,
            Err(message) => {
                bad(BadRecord {
                    line: line_no,
                    message,
                });
                continue;
            }
        };
        if cells.len() == 1 && cells[0].trim().is_empty() {
            continue;
        }
        let Some(h) = &header else {
            header = Some(
                cells
                    .iter()
                    .map(|c| {
                        let c = c.trim().trim_start_matches('\u{feff}');
                        (
                            mapping.target_of(c).map(|t| t as u16),
                            mapping
                                .timestamp
                                .iter()
                                .position(|t| t == c)
                                .map(|p| p.min(250) as u8),
                        )
                    })
                    .collect(),
            );
            continue;
        };
        if cells.len() != h.len() {
            bad(BadRecord {
                line,
                message: format!("{} cells where the header has {}", cells.len(), h.len()),
            });
            continue;
        }
        fields.clear();
        for (c, (target, rank)) in cells.iter().zip(h) {
            if c.is_empty() {
                continue;
            }
            if let Some(r) = rank {
                fields.offer_time(*r, c);
            }
            if let Some(t) = target {
                fields.push(*t, Kind::Str, c);
            }
        }
        f(line, &fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_multiline_and_counts_bad() {
        let m = Mapping::ecs();
        let text = "@timestamp,source.ip,url.full,note\n2024-01-01T00:00:00Z,10.0.0.1,\"http://a.example/?q=\"\"x\"\",y\",\"two\nlines\"\n,,,\nonly,two\n2024-01-01T00:00:00Z,10.0.0.2,\"bad\"x,z\n2024-01-01T00:00:00Z,::1,,\n";
        let mut recs = vec![];
        let mut bad = vec![];
        read_csv(
            text.as_bytes(),
            &m,
            |line, f| {
                recs.push((
                    line,
                    f.iter().map(|(_, _, x)| x.to_string()).collect::<Vec<_>>(),
                    f.time_text().map(str::to_string),
                ))
            },
            |b| bad.push(b.line),
        )
        .unwrap();
        assert_eq!(recs.len(), 3, "{recs:?}");
        assert_eq!(recs[0].0, 2);
        assert_eq!(
            recs[0].1,
            vec![
                "10.0.0.1".to_string(),
                "http://a.example/?q=\"x\",y".to_string()
            ]
        );
        assert_eq!(recs[0].2.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(recs[1].1, Vec::<String>::new());
        assert_eq!(recs[2].0, 7);
        assert_eq!(bad, vec![5, 6]);
    }
}

use super::*;
use std::io::Write;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("cift-journal-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn payload(seq: u64, count: u32) -> Vec<u8> {
    (0..count as u64 * 8)
        .map(|i| (seq * 31 + i) as u8)
        .collect()
}

fn write_records(dir: &Path, roll: u64, n: u64) -> u64 {
    let mut w = JournalWriter::open(dir, roll, 1).unwrap();
    let mut seq = 1;
    for i in 0..n {
        let count = (i % 5 + 1) as u32;
        w.append(1, seq, count, &payload(seq, count)).unwrap();
        seq += u64::from(count);
        w.sync().unwrap();
    }
    seq
}

#[test]
fn appended_records_read_back_in_order_across_rolled_files() {
    let t = TempDir::new("roundtrip");
    let next = write_records(&t.0, 200, 50);
    let files = list_files(&t.0).unwrap();
    assert!(
        files.len() > 3,
        "small roll size must roll: {}",
        files.len()
    );
    let report = scan(&t.0).unwrap();
    assert_eq!(report.records, 50);
    assert_eq!(report.next_seq, next);
    assert_eq!(report.first_seq, Some(1));
    assert_eq!(report.tail, TailState::Clean);
    let recs: Vec<RecordRef> = JournalReader::open(&t.0, 1)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(recs.len(), 50);
    for r in &recs {
        assert_eq!(r.payload, payload(r.first_seq, r.count));
    }
    // Reading from the middle starts at the record holding that sequence number.
    assert_eq!(recs[21].count, 2);
    let from = recs[21].first_seq + 1;
    let tail: Vec<RecordRef> = JournalReader::open(&t.0, from)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(tail.first().map(|r| r.first_seq), Some(recs[21].first_seq));
    assert_eq!(tail.len(), 29);
}

#[test]
fn reopened_writer_continues_the_sequence() {
    let t = TempDir::new("reopen");
    let next = write_records(&t.0, 1 << 20, 10);
    let mut w = JournalWriter::open(&t.0, 1 << 20, next).unwrap();
    w.append(1, next, 2, b"abcdefgh").unwrap();
    w.sync().unwrap();
    assert!(matches!(
        w.append(1, next, 1, b""),
        Err(JournalError::OutOfSequence { .. })
    ));
    let report = scan(&t.0).unwrap();
    assert_eq!(report.records, 11);
    assert_eq!(report.next_seq, next + 2);
}

#[test]
fn every_truncation_of_the_last_record_is_a_torn_tail_that_truncates_to_the_previous_record() {
    let t = TempDir::new("torn");
    write_records(&t.0, 1 << 20, 6);
    let (_, path) = list_files(&t.0).unwrap().pop().unwrap();
    let full = std::fs::read(&path).unwrap();
    let before = scan(&t.0).unwrap();
    let last_len = RECORD_HEADER_SIZE + payload(0, 1).len(); // record 6 holds 1 command (i % 5 + 1)
    let last_start = full.len() - last_len;
    for cut in last_start..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let r = scan(&t.0).unwrap();
        assert_eq!(r.records, before.records - 1, "cut at {cut}");
        match &r.tail {
            TailState::Torn { offset, .. } if cut > last_start => {
                assert_eq!(*offset as usize, last_start)
            }
            TailState::Clean if cut == last_start => {}
            other => panic!("cut at {cut}: unexpected tail {other:?}"),
        }
        truncate_tail(&r.tail).unwrap();
        let again = scan(&t.0).unwrap();
        assert_eq!(again.tail, TailState::Clean);
        assert_eq!(again.next_seq, r.next_seq);
    }
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let t = TempDir::new("garbage");
    write_records(&t.0, 1 << 20, 4);
    let before = scan(&t.0).unwrap();
    let (_, path) = list_files(&t.0).unwrap().pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[0xAB; 37]).unwrap();
    let r = scan(&t.0).unwrap();
    assert_eq!(r.records, before.records);
    assert!(matches!(r.tail, TailState::Torn { bytes: 37, .. }));
}

#[test]
fn a_flipped_byte_in_the_middle_is_corruption_not_a_torn_tail() {
    let t = TempDir::new("corrupt");
    write_records(&t.0, 1 << 20, 8);
    let (_, path) = list_files(&t.0).unwrap().pop().unwrap();
    let mut b = std::fs::read(&path).unwrap();
    b[FILE_HEADER_SIZE + RECORD_HEADER_SIZE + 3] ^= 0xFF; // inside the first record's payload
    std::fs::write(&path, &b).unwrap();
    let err = scan(&t.0).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("not a torn tail"));
}

#[test]
fn corruption_in_an_earlier_file_stops_the_scan() {
    let t = TempDir::new("corrupt-early");
    write_records(&t.0, 200, 30);
    let files = list_files(&t.0).unwrap();
    let (_, first) = &files[0];
    let mut b = std::fs::read(first).unwrap();
    let n = b.len();
    b[n - 1] ^= 0x01;
    std::fs::write(first, &b).unwrap();
    assert!(matches!(scan(&t.0), Err(JournalError::Corrupt { .. })));
}

#[test]
fn a_file_that_is_not_a_journal_is_rejected() {
    let t = TempDir::new("badheader");
    std::fs::create_dir_all(&t.0).unwrap();
    std::fs::write(
        t.0.join(file_name(1)),
        b"this is not a journal file at all, sorry",
    )
    .unwrap();
    std::fs::write(t.0.join(file_name(9)), b"x").unwrap();
    assert!(matches!(scan(&t.0), Err(JournalError::BadHeader { .. })));
}

#[test]
fn empty_directory_is_an_empty_journal() {
    let t = TempDir::new("empty");
    let r = scan(&t.0).unwrap();
    assert_eq!(
        (r.files, r.records, r.next_seq, r.first_seq),
        (0, 0, 0, None)
    );
}

//! HL7 v2.5.1 tables used by the validator (Appendix A / ch. 2 tables; user-defined tables
//! hold the values the standard suggests).

/// A table: its number and values.
pub(crate) struct Table {
    pub(crate) id: &'static str,
    pub(crate) values: &'static [&'static str],
}

macro_rules! table {
    ($name:ident, $id:literal, [$($v:literal),* $(,)?]) => {
        pub(crate) const $name: Table = Table { id: $id, values: &[$($v),*] };
    };
}

table!(T0001, "0001", ["A", "F", "M", "N", "O", "U"]);
table!(T0004, "0004", ["B", "C", "E", "I", "N", "O", "P", "R", "U"]);
table!(T0007, "0007", ["A", "C", "E", "L", "N", "R", "U"]);
table!(T0008, "0008", ["AA", "AE", "AR", "CA", "CE", "CR"]);
table!(
    T0038,
    "0038",
    ["A", "CA", "CM", "DC", "ER", "HD", "IP", "RP", "SC"]
);
table!(
    T0076,
    "0076",
    [
        "ACK", "ADR", "ADT", "BAR", "BPS", "BRP", "BRT", "BTS", "CRM", "CSU", "DFT", "DOC", "DSR",
        "EAC", "EAN", "EAR", "EDR", "EQQ", "ERP", "ESR", "ESU", "INR", "INU", "LSR", "LSU", "MDM",
        "MFD", "MFK", "MFN", "MFQ", "MFR", "NMD", "NMQ", "NMR", "OMB", "OMD", "OMG", "OMI", "OML",
        "OMN", "OMP", "OMS", "OPL", "OPR", "OPU", "ORA", "ORB", "ORD", "ORF", "ORG", "ORI", "ORL",
        "ORM", "ORN", "ORP", "ORR", "ORS", "ORU", "OSQ", "OSR", "OUL", "PEX", "PGL", "PIN", "PMU",
        "PPG", "PPP", "PPR", "PPT", "PPV", "PRR", "PTR", "QBP", "QCK", "QCN", "QRY", "QSB", "QSX",
        "QVR", "RAR", "RAS", "RCI", "RCL", "RDE", "RDR", "RDS", "RDY", "REF", "RER", "RGR", "RGV",
        "ROR", "RPA", "RPI", "RPL", "RPR", "RQA", "RQC", "RQI", "RQP", "RRA", "RRD", "RRE", "RRG",
        "RRI", "RSP", "RTB", "SIU", "SPQ", "SQM", "SQR", "SRM", "SRR", "SSR", "SSU", "SUR", "TBR",
        "TCR", "TCU", "UDM", "VQQ", "VXQ", "VXR", "VXU", "VXX",
    ]
);
table!(
    T0085,
    "0085",
    ["C", "D", "F", "I", "N", "O", "P", "R", "S", "U", "W", "X"]
);
table!(T0103, "0103", ["D", "P", "T"]);
table!(
    T0104,
    "0104",
    [
        "2.0", "2.0D", "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1",
        "2.8"
    ]
);
table!(
    T0119,
    "0119",
    [
        "AF", "CA", "CH", "CN", "CR", "DC", "DE", "DF", "DR", "FU", "HD", "HR", "LI", "NA", "NW",
        "OC", "OD", "OE", "OF", "OH", "OK", "OP", "OR", "PA", "PR", "PY", "RC", "RE", "RF", "RL",
        "RO", "RP", "RQ", "RR", "RU", "SC", "SN", "SR", "SS", "UA", "UC", "UD", "UF", "UH", "UM",
        "UN", "UR", "UX", "XO", "XR", "XX",
    ]
);
table!(
    T0123,
    "0123",
    ["A", "C", "F", "I", "O", "P", "R", "S", "X", "Y", "Z"]
);
table!(T0155, "0155", ["AL", "ER", "NE", "SU"]);
table!(
    T0200,
    "0200",
    [
        "A", "B", "BAD", "C", "D", "I", "K", "L", "M", "N", "P", "R", "S", "T", "U"
    ]
);
table!(
    T0203,
    "0203",
    [
        "AM", "AN", "ANON", "APRN", "BA", "BC", "BR", "BRN", "CC", "CY", "DDS", "DEA", "DFN", "DL",
        "DN", "DO", "DPM", "DR", "DS", "EI", "EN", "FI", "GI", "GL", "GN", "HC", "JHN", "IND",
        "LI", "LN", "LR", "MA", "MB", "MC", "MCD", "MCN", "MCR", "MCT", "MD", "MI", "MR", "MS",
        "NBSNR", "NCT", "NE", "NH", "NI", "NII", "NIIP", "NNxxx", "NP", "NPI", "OD", "PA", "PCN",
        "PE", "PEN", "PI", "PN", "PNT", "PPN", "PRC", "PRN", "PT", "QA", "RI", "RN", "RPH", "RR",
        "RRI", "SL", "SN", "SR", "SS", "TAX", "TN", "U", "UPIN", "VN", "VS", "WC", "WCN", "XX",
    ]
);
table!(
    T0211,
    "0211",
    [
        "ASCII",
        "8859/1",
        "8859/2",
        "8859/3",
        "8859/4",
        "8859/5",
        "8859/6",
        "8859/7",
        "8859/8",
        "8859/9",
        "8859/15",
        "ISO IR14",
        "ISO IR87",
        "ISO IR159",
        "GB 18030-2000",
        "KS X 1001",
        "CNS 11643-1992",
        "BIG-5",
        "UNICODE",
        "UNICODE UTF-8",
        "UNICODE UTF-16",
        "UNICODE UTF-32",
    ]
);
table!(
    T0357,
    "0357",
    [
        "0", "100", "101", "102", "103", "200", "201", "202", "203", "204", "205", "206", "207"
    ]
);
table!(T0516, "0516", ["E", "I", "W"]);
table!(
    T0125,
    "0125",
    [
        "AD", "CE", "CF", "CK", "CN", "CP", "CWE", "CX", "DT", "DTM", "ED", "FT", "ID", "MO", "NM",
        "PN", "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN", "XON", "XPN", "XTN",
    ]
);

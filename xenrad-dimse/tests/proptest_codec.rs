//! Property tests: any A-ASSOCIATE-RQ and command set we can build survives encode → parse,
//! and P-DATA fragmentation reassembles to the input for any size and peer maximum.

use proptest::prelude::*;
use xenrad_dimse::dimse::Command;
use xenrad_dimse::pdu::{
    AssociateRq, Pdu, PresentationContextRq, RoleSelection, UserInformation, encode,
    reader::{PduReader, ReaderLimits},
};

fn uid() -> impl Strategy<Value = String> {
    prop::collection::vec(1u32..100_000, 1..8).prop_map(|parts| {
        parts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn ae() -> impl Strategy<Value = String> {
    "[A-Z0-9_]{1,16}"
}

proptest! {
    #[test]
    fn associate_rq_round_trips(
        called in ae(),
        calling in ae(),
        pcs in prop::collection::vec((uid(), prop::collection::vec(uid(), 1..4)), 0..20),
        max in proptest::option::of(any::<u32>()),
        roles in prop::collection::vec((uid(), any::<bool>(), any::<bool>()), 0..3),
        window in proptest::option::of((any::<u16>(), any::<u16>())),
    ) {
        let rq = AssociateRq {
            protocol_version: 1,
            called_ae: &called,
            calling_ae: &calling,
            application_context: "1.2.840.10008.3.1.1.1",
            presentation_contexts: pcs
                .iter()
                .enumerate()
                .map(|(i, (a, t))| PresentationContextRq {
                    id: (i * 2 + 1) as u8,
                    abstract_syntax: a,
                    transfer_syntaxes: t.iter().map(String::as_str).collect(),
                })
                .collect(),
            user: UserInformation {
                max_pdu_length: max,
                async_ops_window: window,
                role_selections: roles
                    .iter()
                    .map(|(u, a, b)| RoleSelection { sop_class_uid: u, scu_role: *a, scp_role: *b })
                    .collect(),
                ..UserInformation::default()
            },
        };
        let mut b = Vec::new();
        encode::associate_rq(&mut b, &rq);
        prop_assert_eq!(Pdu::parse(&b).unwrap(), Pdu::AssociateRq(rq));
    }

    #[test]
    fn command_round_trips(
        field in any::<u16>(),
        id in proptest::option::of(any::<u16>()),
        class in proptest::option::of(uid()),
        inst in proptest::option::of(uid()),
        status in proptest::option::of(any::<u16>()),
        has_dataset in any::<bool>(),
    ) {
        let c = Command {
            field,
            message_id: id,
            affected_sop_class: class.as_deref(),
            affected_sop_instance: inst.as_deref(),
            status,
            has_dataset,
            ..Command::default()
        };
        let enc = c.encode();
        prop_assert_eq!(Command::decode(&enc).unwrap(), c);
    }

    #[test]
    fn pdata_fragments_reassemble(len in 0usize..70_000, max in 7u32..20_000, read in 1usize..9_000) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let mut out = Vec::new();
        encode::pdata_fragments(&mut out, 3, false, &data, max);
        let mut r = PduReader::new(ReaderLimits { max_pdata_len: max, max_other_len: 1024 });
        let mut got = Vec::new();
        let mut last = 0;
        for chunk in out.chunks(read) {
            r.push(chunk);
            while let Some(f) = r.next_frame().unwrap() {
                let Pdu::PData(p) = Pdu::parse(&f).unwrap() else { panic!("not P-DATA") };
                for pdv in p.pdvs {
                    got.extend_from_slice(pdv.data);
                    last += usize::from(pdv.is_last);
                }
            }
        }
        prop_assert_eq!(last, 1);
        prop_assert_eq!(got, data);
    }
}

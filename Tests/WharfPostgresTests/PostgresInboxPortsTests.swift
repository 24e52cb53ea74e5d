import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// What the listener reads and writes, on the shared registry: partners, receipts (with
/// idempotency across nodes) and pull outboxes.
@Suite struct PostgresInboxPortsTests {
    static let fingerprint = try! CertificateFingerprint(parsing: String(repeating: "ab", count: 32))

    static func partner(_ name: String) throws -> Partner {
        Partner(
            name: try PartnerName(name), displayName: "\(name) Ltd\u{1B}[31m", identities: [try InboundIdentity(.fingerprint(fingerprint))],
            outbound: OutboundSettings(url: try OutboundURL(parsing: "https://\(name).example/in"), maxDeliveries: 4)
        )
    }

    @Test func aPartnerAddedOnOneNodeIsWhatAnotherNodeMapsACertificateTo() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            let store: any GatewayStore = b
            let before = try store.partnerGeneration()
            try a.add(try Self.partner("acme"))
            #expect(try store.partnerGeneration() > before)
            let owners = try store.owners(ofFingerprint: Self.fingerprint, subject: nil, serial: nil)
            #expect(owners.partners.map(\.name.rawValue) == ["acme"])
            #expect(owners.partners.first == (try Self.partner("acme")), "every setting read back as written")
            #expect(try store.pinnedFingerprints() == [Self.fingerprint])
            // The same certificate cannot identify a second partner; nothing of it is written.
            let error = try #require(throws: WharfError.self) { try b.add(try Self.partner("globex")) }
            #expect(error.code == .conflict)
            #expect(try a.partners().map(\.name.rawValue) == ["acme"])
            try a.update(try PartnerName("acme")) { partner throws(WharfError) in partner.status = .disabled }
            #expect(try store.pinnedFingerprints().isEmpty, "a disabled partner's certificates are not trusted")
            try b.remove(try PartnerName("acme"))
            #expect(try store.partner(named: try PartnerName("acme")) == nil)
        }
    }

    static func receipt(_ id: String, key: String?, sha256: String = String(repeating: "c", count: 64)) -> Receipt {
        Receipt(
            id: id, partner: "acme", filename: "order.xml", storedName: "\(id)-order.xml", size: 5, sha256: sha256,
            receivedAt: Date(), idempotencyKey: key
        )
    }

    static func audit(_ outcome: ReceiptCommit) -> AuditEvent {
        let label: AuditEvent.Outcome = switch outcome {
        case .committed: .accepted
        case .replay: .replayed
        case .conflict: .refused
        }
        return AuditEvent(outcome: label, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: nil)
    }

    @Test func theSameIdempotencyKeyOnTwoNodesAtOnceGetsTheFirstReceipt() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            try a.add(try Self.partner("acme"))
            let stores = [a, b]
            let installed = Counter()
            for round in 0..<10 {
                let outcomes = try concurrently(2) { index in
                    try stores[index].commit(Self.receipt("r\(round)-\(index)", key: "key-\(round)"), audit: Self.audit, install: { installed.increment() })
                }
                let committed = outcomes.compactMap { if case .committed(let receipt) = $0 { receipt } else { nil } }
                let replayed = outcomes.compactMap { if case .replay(let receipt) = $0 { receipt } else { nil } }
                #expect(committed.count == 1 && replayed.count == 1, "round \(round): \(outcomes)")
                #expect(replayed.first?.id == committed.first?.id, "the replay answers with the first receipt")
            }
            #expect(installed.value == 10, "only committed receipts install their file")
            #expect(try server.psql("SELECT count(*) FROM receipt") == "10")
            // Another content under a used key is a conflict, not a receipt.
            let conflict = try a.commit(Self.receipt("other", key: "key-0", sha256: String(repeating: "d", count: 64)), audit: Self.audit, install: {})
            guard case .conflict = conflict else { Issue.record("expected a conflict, got \(conflict)"); return }
            #expect(try a.verifyAudit() == 21)
            #expect(try server.psql("SELECT outcome || '=' || count(*) FROM audit_event GROUP BY outcome ORDER BY outcome") == "accepted=10\nrefused=1\nreplayed=10")
            // A receipt whose file cannot be installed is withdrawn, with an event saying so.
            struct Full: Error {}
            #expect(throws: WharfError.self) { try a.commit(Self.receipt("lost", key: "key-lost"), audit: Self.audit, install: { throw Full() }) }
            #expect(try a.receipt(id: "lost") == nil)
            #expect(try b.receipts(partner: "acme", limit: 100).count == 10)
        }
    }

    @Test func aReceiptHeldToPartnersThatChangedSinceWritesNothing() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            try a.add(try Self.partner("acme"))
            let authorizedAt = try b.partnerGeneration()
            // Another node changes the partners between the decision and the commit.
            try a.update(try PartnerName("acme")) { partner throws(WharfError) in partner.maxUploadBytes = 100 }
            let installed = Counter()
            let events = try server.psql("SELECT count(*) FROM audit_event")
            for key in ["key-1", nil] {
                let receipt = Receipt(
                    id: "r-\(key ?? "none")", partner: "acme", filename: "order.xml", storedName: "order.xml", size: 5,
                    sha256: String(repeating: "c", count: 64), receivedAt: Date(), idempotencyKey: key
                )
                let outcome = try b.commit(receipt, whilePartnersAt: authorizedAt, audit: Self.audit, install: { installed.increment() })
                #expect(outcome == nil, "\(String(describing: outcome))")
            }
            #expect(installed.value == 0)
            #expect(try server.psql("SELECT count(*) FROM receipt") == "0")
            #expect(try server.psql("SELECT count(*) FROM audit_event") == events)
            // Held to the generation as it is now, it commits.
            let now = try b.partnerGeneration()
            let outcome = try b.commit(Self.receipt("r-2", key: "key-1"), whilePartnersAt: now, audit: Self.audit, install: { installed.increment() })
            guard case .committed? = outcome else { Issue.record("expected a commit, got \(String(describing: outcome))"); return }
            #expect(installed.value == 1)
            // A replay is told as a replay, not as changed partners.
            let replay = try a.commit(Self.receipt("r-3", key: "key-1"), whilePartnersAt: now, audit: Self.audit, install: {})
            guard case .replay? = replay else { Issue.record("expected a replay, got \(String(describing: replay))"); return }
        }
    }

    @Test func receiptsCommittedInOneStatementEachKeepTheirOwnOutcome() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addHooks(server, [("received", nil)])
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            try a.add(try Self.partner("acme"))
            let now = try a.partnerGeneration()
            func pending(_ receipt: Receipt, at generation: Int64?) -> ReceiptCommitStatement.Pending {
                ReceiptCommitStatement.Pending(receipt: receipt, event: Self.audit(.committed(receipt)), partners: generation)
            }
            // Held to an older generation, or a key taken earlier in the same statement:
            // not inserted, and neither holds back the others.
            let made = try b.commitTogether([
                pending(Self.receipt("r-1", key: "key-1"), at: now),
                pending(Self.receipt("r-2", key: "key-2"), at: now - 1),
                pending(Self.receipt("r-3", key: "key-1"), at: now),
                pending(Self.receipt("r-4", key: nil), at: nil),
            ])
            #expect(made == [true, false, false, true])
            #expect(try server.psql("SELECT id FROM receipt ORDER BY id") == "r-1\nr-4")
            #expect(try server.psql("SELECT subject_id FROM hook_event ORDER BY subject_id") == "r-1\nr-4")
            #expect(try server.psql("SELECT count(*) FROM audit_event") == "2")
            #expect(try a.verifyAudit() == 2)
            // Through `commit`, each of the two is told apart.
            let replay = try b.commit(Self.receipt("r-3", key: "key-1"), whilePartnersAt: now, audit: Self.audit, install: {})
            guard case .replay(let earlier)? = replay else { Issue.record("expected a replay, got \(String(describing: replay))"); return }
            #expect(earlier.id == "r-1")
            #expect(try b.commit(Self.receipt("r-2", key: "key-2"), whilePartnersAt: now - 1, audit: Self.audit, install: {}) == nil)
        }
    }

    @Test func twoNodesCommittingTheSameKeysInOppositeOrderBothFinishAndEachKeyIsTakenOnce() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            try a.add(try Self.partner("acme"))
            let now = try a.partnerGeneration()
            let stores = [a, b]
            // Rounds enough that, without the head's lock taken first, some of them deadlock.
            for round in 0..<100 {
                let keys = ["key-\(round)-x", "key-\(round)-y"]
                let made = try concurrently(2) { index in
                    try stores[index].commitTogether((index == 0 ? keys : keys.reversed()).enumerated().map { position, key in
                        let receipt = Self.receipt("r-\(round)-\(index)-\(position)", key: key)
                        return ReceiptCommitStatement.Pending(receipt: receipt, event: Self.audit(.committed(receipt)), partners: now)
                    })
                }
                #expect(made.joined().filter { $0 }.count == 2, "round \(round): \(made)")
            }
            #expect(try server.psql("SELECT count(DISTINCT idempotency_key), count(*) FROM receipt") == "200|200")
            #expect(try a.verifyAudit() == 200)
        }
    }

    @Test func receiptsFromManyThreadsAtOnceAreAllCommittedOnceWithAnUnbrokenAuditChain() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, _ in
            try a.add(try Self.partner("acme"))
            let now = try a.partnerGeneration()
            let installed = Counter()
            let outcomes = try concurrently(40) { index in
                try a.commit(Self.receipt("r-\(index)", key: "key-\(index)"), whilePartnersAt: now, audit: Self.audit, install: { installed.increment() })
            }
            #expect(outcomes.allSatisfy { if case .committed? = $0 { true } else { false } })
            #expect(installed.value == 40)
            #expect(try server.psql("SELECT count(DISTINCT id), count(*) FROM receipt") == "40|40")
            #expect(try a.verifyAudit() == 40)
        }
    }

    @Test func aPullPartnersFileAcknowledgedOnTwoNodesAtOnceIsDeliveredOnce() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            var partner = try Self.partner("acme")
            partner.outbound.delivery = .pull
            try a.add(partner)
            let queued = try PostgresTransferQueueTests.queue(a, partner: "acme", count: 3)
            #expect(try b.outbox(of: "acme", after: nil, limit: 2).map(\.id) == [queued[0].id, queued[1].id])
            #expect(try b.outbox(of: "acme", after: queued[1].id, limit: 2).map(\.id) == [queued[2].id])
            #expect(try b.outboxTransfer(id: queued[0].id, of: "globex") == nil)
            let stores = [a, b]
            let installs = Counter()
            let answers = try concurrently(2) { index in
                try stores[index].acknowledge(
                    queued[0].id, of: "acme", at: Date(), remoteAddress: "192.0.2.\(index)",
                    receipt: { _ in (json: "{\"node\":\(index)}", signature: nil) }, install: { _ in installs.increment() }
                )
            }
            #expect(answers.allSatisfy { $0?.state == .delivered })
            #expect(answers[0]?.receipt == answers[1]?.receipt, "both answer with the one receipt recorded")
            #expect(installs.value == 1)
            #expect(try server.psql("SELECT count(*) FROM delivery_attempt") == "1")
            // Waiting too long: the others expire, once.
            let later = Date().addingTimeInterval(3600)
            #expect(try a.expireUnfetched(now: later, defaultMaxAge: 60).count == 2)
            #expect(try b.expireUnfetched(now: later, defaultMaxAge: 60).isEmpty)
        }
    }
}

import Foundation
import GRDB
import Testing
import WharfCore
@testable import WharfStore

@Suite struct RegistryTests {
    let directory: String
    let path: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wharf-registry-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = "\(directory)/\(Registry.fileName)"
    }

    func acme() throws -> Partner {
        Partner(
            name: try PartnerName("acme"),
            displayName: "Acme Corp",
            identities: [
                try InboundIdentity(.subject(SubjectName(parsing: "C = US, O = Acme, CN = gw"))),
                try InboundIdentity(
                    .fingerprint(CertificateFingerprint(digest: Array(repeating: 0xab, count: 32))),
                    notBefore: Date(timeIntervalSince1970: 1_700_000_000), notAfter: Date(timeIntervalSince1970: 1_800_000_000)
                ),
            ],
            trustCAPEM: "-----BEGIN CERTIFICATE-----\nTRUST\n-----END CERTIFICATE-----\n",
            pinnedCertificatesPEM: "-----BEGIN CERTIFICATE-----\nPINNED\n-----END CERTIFICATE-----\n",
            outbound: OutboundSettings(
                url: try OutboundURL(parsing: "https://files.acme.example/in"),
                serverCAPEM: "-----BEGIN CERTIFICATE-----\nSERVER\n-----END CERTIFICATE-----\n",
                pins: [
                    PublicKeyPin(spkiDigest: Array(repeating: 1, count: 32)),
                    PublicKeyPin(spkiDigest: Array(repeating: 2, count: 32)),
                ],
                clientCredential: ClientCredential(certificatePEM: "CERT", privateKeyPEM: "KEY")
            )
        )
    }

    @Test func migrationsAreNamedAndAppliedOnce() throws {
        let registry = try Registry.create(at: path)
        #expect(try registry.appliedMigrations() == ["v1-partner-registry", "v2-inbound-receipts-and-audit", "v3-outbound-transfers", "v4-schedules", "v5-partner-trust-index", "v6-transfer-queue-order", "v7-partner-generation", "v8-attempt-counts-and-unsent-attempts", "v9-audit-chain-and-operators", "v10-transfer-metrics-index", "v11-defender-and-audit-retention", "v12-revoked-certificates", "v13-pinned-partner-certificates", "v14-issued-certificates", "v15-partner-crl", "v16-pull-delivery", "v17-signed-receipts", "v18-hooks", "v19-receiver-receipt-signatures", "v20-partial-uploads", "v21-transfer-upload-location"])
        let reopened = try Registry.open(at: path)
        #expect(try reopened.appliedMigrations() == ["v1-partner-registry", "v2-inbound-receipts-and-audit", "v3-outbound-transfers", "v4-schedules", "v5-partner-trust-index", "v6-transfer-queue-order", "v7-partner-generation", "v8-attempt-counts-and-unsent-attempts", "v9-audit-chain-and-operators", "v10-transfer-metrics-index", "v11-defender-and-audit-retention", "v12-revoked-certificates", "v13-pinned-partner-certificates", "v14-issued-certificates", "v15-partner-crl", "v16-pull-delivery", "v17-signed-receipts", "v18-hooks", "v19-receiver-receipt-signatures", "v20-partial-uploads", "v21-transfer-upload-location"])
    }

    @Test func theRegistryRunsInWALModeReadableByItsOwnerOnly() throws {
        _ = try Registry.create(at: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let journal = try DatabaseQueue(path: path).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }

    @Test func createRefusesAnExistingRegistryAndOpenAMissingOne() throws {
        _ = try Registry.create(at: path)
        #expect(throws: WharfError(.alreadyInitialized, "a registry already exists at \(path)")) {
            try Registry.create(at: path)
        }
        let error = #expect(throws: WharfError.self) { try Registry.open(at: "\(directory)/missing.sqlite") }
        #expect(error?.code == .notInitialized)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/missing.sqlite"))
    }

    @Test func aPartnerRoundTripsWithEverySetting() throws {
        let registry = try Registry.create(at: path)
        let partner = try acme()
        try registry.add(partner)
        #expect(try registry.partner(named: partner.name) == partner)
        #expect(try registry.partners().map(\.name.rawValue) == ["acme"])
    }

    @Test func aSecondProcessSeesAChangeAtOnce() throws {
        let server = try Registry.create(at: path)
        let cli = try Registry.open(at: path)
        #expect(try server.partner(named: PartnerName("acme")) == nil)
        try cli.add(try acme())
        try cli.setStatus(.disabled, of: PartnerName("acme"))
        #expect(try server.partner(named: PartnerName("acme"))?.status == .disabled)
    }

    @Test func aDuplicateNameIsRefusedAndChangesNothing() throws {
        let registry = try Registry.create(at: path)
        try registry.add(try acme())
        var twin = Partner(name: try PartnerName("acme"), displayName: "Other")
        twin.outbound.pins = [PublicKeyPin(spkiDigest: Array(repeating: 9, count: 32))]
        let error = #expect(throws: WharfError.self) { try registry.add(twin) }
        #expect(error?.code == .conflict)
        #expect(try registry.partner(named: PartnerName("acme")) == acme())
    }

    @Test func anIdentityBelongsToOnePartnerOnly() throws {
        let registry = try Registry.create(at: path)
        try registry.add(try acme())
        // The same subject spelt the RFC 4514 way.
        let other = Partner(
            name: try PartnerName("other"),
            identities: [try InboundIdentity(.subject(SubjectName(parsing: "CN=gw,O=Acme,C=US")))]
        )
        let error = #expect(throws: WharfError.self) { try registry.add(other) }
        #expect(error?.code == .conflict)
        #expect(error?.problem.contains("'acme'") == true)
        #expect(try registry.partner(named: PartnerName("other")) == nil)
        #expect(try registry.owner(ofIdentity: other.identities[0]) == PartnerName("acme"))
    }

    @Test func aRefusedUpdateWritesNothing() throws {
        let registry = try Registry.create(at: path)
        try registry.add(try acme())
        #expect(throws: WharfError.self) {
            try registry.update(PartnerName("acme")) { partner throws(WharfError) in
                partner.outbound.pins.removeAll()
                partner.displayName = "Changed"
                throw .invalid("refused")
            }
        }
        #expect(try registry.partner(named: PartnerName("acme")) == acme())
    }

    @Test func removeTakesIdentitiesAndPinsWithIt() throws {
        let registry = try Registry.create(at: path)
        let partner = try acme()
        try registry.add(partner)
        try registry.remove(partner.name)
        #expect(try registry.partner(named: partner.name) == nil)
        #expect(try registry.owner(ofIdentity: partner.identities[0]) == nil)
        let orphans = try registry.read { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM partner_identity) + (SELECT count(*) FROM partner_pin)")
        }
        #expect(orphans == 0)
        let error = #expect(throws: WharfError.self) { try registry.remove(partner.name) }
        #expect(error?.code == .notFound)
    }

    @Test func thePartnerGenerationMovesWithPartnersAndIdentitiesOnly() throws {
        let registry = try Registry.create(at: path)
        let cli = try Registry.open(at: path)
        var seen = [try registry.partnerGeneration()]
        func moved() throws -> Bool {
            let now = try registry.partnerGeneration()
            defer { seen.append(now) }
            return now > seen.last!
        }
        let acme = try acme()
        try cli.add(acme)
        #expect(try moved(), "a partner added")
        try cli.setStatus(.disabled, of: acme.name)
        #expect(try moved(), "a partner disabled")
        _ = try cli.update(acme.name) { $0.identities.removeLast() }
        #expect(try moved(), "an identity removed")
        _ = try cli.update(acme.name) { $0.maxUploadBytes = 10 }
        #expect(try moved(), "an upload limit changed")

        let receipt = Receipt(
            id: "r1", partner: "acme", filename: "a.txt", storedName: "r1-a.txt", size: 1,
            sha256: String(repeating: "0", count: 64), receivedAt: Date(), idempotencyKey: nil
        )
        _ = try cli.commit(receipt, audit: { _ in
            AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: nil)
        }, install: {})
        #expect(try !moved(), "a receipt and its audit event")

        let owners = try registry.owners(
            ofFingerprint: CertificateFingerprint(digest: Array(repeating: 0xcd, count: 32)),
            subject: try SubjectName(parsing: "CN=gw,O=Acme,C=US"), serial: nil
        )
        #expect(owners.partners.map(\.name) == [acme.name] && owners.generation == seen.last)
        try cli.remove(acme.name)
        #expect(try moved(), "a partner removed")
    }

    @Test func aReceiptHeldToPartnersThatChangedSinceWritesNothing() throws {
        let registry = try Registry.create(at: path)
        let cli = try Registry.open(at: path)
        let acme = try acme()
        try registry.add(acme)
        let authorizedAt = try registry.partnerGeneration()
        _ = try cli.update(acme.name) { $0.maxUploadBytes = 10 }
        let receipt = Receipt(
            id: "r1", partner: "acme", filename: "a.txt", storedName: "r1-a.txt", size: 1,
            sha256: String(repeating: "0", count: 64), receivedAt: Date(), idempotencyKey: nil
        )
        let event = { (_: ReceiptCommit) in
            AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: nil)
        }
        var installs = 0
        #expect(try registry.commit(receipt, whilePartnersAt: authorizedAt, audit: event, install: { installs += 1 }) == nil)
        #expect(installs == 0)
        #expect(try registry.receipt(id: "r1") == nil)
        #expect(try registry.verifyAudit() == 0, "no audit event either")
        let now = try registry.partnerGeneration()
        #expect(try registry.commit(receipt, whilePartnersAt: now, audit: event, install: { installs += 1 }) == .committed(receipt))
        #expect(installs == 1)
    }

    @Test(arguments: [
        ("INSERT INTO partner (name, display_name, created_at, updated_at) VALUES ('Bad_Name', 'x', 0, 0)", "a name that is no slug"),
        ("INSERT INTO partner (name, display_name, status, created_at, updated_at) VALUES ('x', 'x', 'paused', 0, 0)", "an unknown status"),
        ("INSERT INTO partner (name, display_name, client_cert_pem, created_at, updated_at) VALUES ('x', 'x', 'CERT', 0, 0)", "a certificate without its key"),
        ("INSERT INTO partner (name, display_name, url, created_at, updated_at) VALUES ('x', 'x', 'http://a', 0, 0)", "a plain-HTTP URL"),
        ("INSERT INTO partner_identity (partner, kind, value, match_key) VALUES ('nobody', 'subject', 'CN=x', 'cn=x')", "an identity of no partner"),
        ("INSERT INTO partner_pin (partner, position, pin) VALUES ('acme', 0, 'md5//x')", "a pin that is not sha256"),
    ])
    func theSchemaRefusesWhatTheCodeNeverWrites(sql: String, what: String) throws {
        let registry = try Registry.create(at: path)
        try registry.add(try acme())
        #expect(throws: WharfError.self, "the schema accepted \(what)") {
            try registry.write { db in try db.execute(sql: sql) }
        }
        #expect(try registry.partners() == [acme()])
    }
}

import Foundation
import GRDB
import WharfCore

extension Registry: PartnerDirectory {
    /// Registers a new partner with its identities and pins.
    public func add(_ partner: Partner) throws(WharfError) {
        try write { db in
            if try Self.exists(partner.name, db) {
                throw WharfError(
                    .conflict, "a partner named '\(partner.name)' already exists",
                    fix: "choose another name, or change it with `wharf partner update \(partner.name)`"
                )
            }
            let now = Date()
            try db.execute(
                sql: """
                    INSERT INTO partner (name, display_name, status, trust_ca_pem, url, server_ca_pem,
                                         client_cert_pem, client_key_pem, max_upload_bytes, retry_initial_seconds,
                                         retry_maximum_seconds, max_attempts, max_age_seconds, max_deliveries,
                                         pinned_certificates_pem, crl_path, delivery_mode, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: StatementArguments(Self.columns(of: partner) + [now.stored, now.stored] as [(any DatabaseValueConvertible)?])
            )
            try Self.insertChildren(of: partner, db)
        }
    }

    /// Replaces a partner's settings with what `change` makes of them, in one transaction.
    ///
    /// `change` may throw to refuse; then nothing is written.
    @discardableResult
    public func update(_ name: PartnerName, _ change: (inout Partner) throws(WharfError) -> Void) throws(WharfError) -> Partner {
        try write { db in
            guard var partner = try Self.fetch(name, db) else { throw WharfError.unknownPartner(name.rawValue) }
            try change(&partner)
            precondition(partner.name == name, "a partner's name does not change")
            try db.execute(
                sql: """
                    UPDATE partner SET display_name = ?, status = ?, trust_ca_pem = ?, url = ?, server_ca_pem = ?,
                                       client_cert_pem = ?, client_key_pem = ?, max_upload_bytes = ?,
                                       retry_initial_seconds = ?, retry_maximum_seconds = ?, max_attempts = ?,
                                       max_age_seconds = ?, max_deliveries = ?, pinned_certificates_pem = ?, crl_path = ?,
                                       delivery_mode = ?, updated_at = ?
                    WHERE name = ?
                    """,
                arguments: StatementArguments(Array(Self.columns(of: partner).dropFirst()) + [Date().stored, name.rawValue] as [(any DatabaseValueConvertible)?])
            )
            try db.execute(sql: "DELETE FROM partner_identity WHERE partner = ?", arguments: [name.rawValue])
            try db.execute(sql: "DELETE FROM partner_pin WHERE partner = ?", arguments: [name.rawValue])
            try Self.insertChildren(of: partner, db)
            return partner
        }
    }

    /// Sets a partner active or disabled.
    public func setStatus(_ status: Partner.Status, of name: PartnerName) throws(WharfError) {
        try update(name) { partner throws(WharfError) in partner.status = status }
    }

    /// Removes a partner and everything the registry holds about it.
    public func remove(_ name: PartnerName) throws(WharfError) {
        try write { db in
            try db.execute(sql: "DELETE FROM partner WHERE name = ?", arguments: [name.rawValue])
            if db.changesCount == 0 { throw WharfError.unknownPartner(name.rawValue) }
        }
    }

    /// The partner named `name`, if there is one.
    public func partner(named name: PartnerName) throws(WharfError) -> Partner? {
        try read { db in try Self.fetch(name, db) }
    }

    /// All partners, by name.
    public func partners() throws(WharfError) -> [Partner] {
        try read { db in
            let names = try String.fetchAll(db, sql: "SELECT name FROM partner ORDER BY name")
            return try names.compactMap { try Self.fetch(PartnerName($0), db) }
        }
    }

    /// The partner that owns an identity with this kind and match key, if any.
    public func owner(ofIdentity identity: InboundIdentity) throws(WharfError) -> PartnerName? {
        try read { db in
            try String.fetchOne(
                db, sql: "SELECT partner FROM partner_identity WHERE kind = ? AND match_key = ?",
                arguments: [identity.kindName, identity.matchKey]
            ).map { try PartnerName($0) }
        }
    }

    /// The partners owning an identity with this certificate fingerprint or subject,
    /// whatever the identity's window, and the partner generation they were read at;
    /// `InboundAuthorization` decides among them.
    public func owners(ofFingerprint fingerprint: CertificateFingerprint, subject: SubjectName?, serial: String?) throws(WharfError) -> InboundOwners {
        try read { db in
            let revocations = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM revoked_certificate WHERE fingerprint = ? OR serial = ? ORDER BY id"),
                arguments: [fingerprint.hex, serial]
            ).map(Self.revocation(from:))
            let generation = try Self.partnerGeneration(db)
            let names = try String.fetchAll(
                db.cachedStatement(sql: """
                    SELECT DISTINCT partner FROM partner_identity
                    WHERE (kind = 'fingerprint' AND match_key = ?) OR (kind = 'subject' AND match_key = ?)
                    """),
                arguments: [fingerprint.hex, subject?.matchKey]
            )
            return InboundOwners(
                partners: try names.compactMap { try Self.fetch(PartnerName($0), db) }, revocations: revocations, generation: generation
            )
        }
    }

    /// A number that grows whenever a partner or one of its identities is added, changed
    /// or removed (triggers keep it): a decision made from the partners as they were at
    /// one generation still holds while the generation is the same.
    public func partnerGeneration() throws(WharfError) -> Int64 {
        try read { db in try Self.partnerGeneration(db) }
    }

    static func partnerGeneration(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT value FROM partner_generation WHERE id = 1")) ?? 0
    }

    /// What the listener trusts for each active partner's client certificates only: its own
    /// CA. (Its self-signed certificates are accepted by fingerprint, exactly.)
    public func partnerTrustAnchors() throws(WharfError) -> [(partner: PartnerName, pem: String)] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT name, trust_ca_pem AS pem FROM partner
                    WHERE trust_ca_pem IS NOT NULL AND status = 'active' ORDER BY name
                    """)
            ).map { (try PartnerName($0["name"]), $0["pem"]) }
        }
    }

    public func pinnedFingerprints() throws(WharfError) -> Set<CertificateFingerprint> {
        try read { db in
            Set(try String.fetchAll(
                db.cachedStatement(sql: """
                    SELECT DISTINCT i.match_key FROM partner_identity i JOIN partner p ON p.name = i.partner
                    WHERE i.kind = 'fingerprint' AND p.status = 'active'
                    """)
            ).map { text throws(WharfError) in try CertificateFingerprint(parsing: text) })
        }
    }

    public func partnerRevocationLists() throws(WharfError) -> [(partner: PartnerName, path: String)] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT name, crl_path FROM partner WHERE crl_path IS NOT NULL AND status = 'active' ORDER BY name")
            ).map { (try PartnerName($0["name"]), $0["crl_path"]) }
        }
    }

    // MARK: Rows

    private static func exists(_ name: PartnerName, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM partner WHERE name = ?)", arguments: [name.rawValue]) ?? false
    }

    private static func columns(of partner: Partner) -> [(any DatabaseValueConvertible)?] {
        [
            partner.name.rawValue, partner.displayName, partner.status.rawValue, partner.trustCAPEM,
            partner.outbound.url?.rawValue, partner.outbound.serverCAPEM,
            partner.outbound.clientCredential?.certificatePEM, partner.outbound.clientCredential?.privateKeyPEM,
            partner.maxUploadBytes,
            partner.outbound.retryInitialDelay, partner.outbound.retryMaximumDelay, partner.outbound.maxAttempts,
            partner.outbound.maxAge, partner.outbound.maxDeliveries, partner.pinnedCertificatesPEM,
            partner.revocationListPath, partner.outbound.delivery.rawValue,
        ]
    }

    private static func insertChildren(of partner: Partner, _ db: Database) throws {
        for identity in partner.identities {
            if let owner = try String.fetchOne(
                db, sql: "SELECT partner FROM partner_identity WHERE kind = ? AND match_key = ?",
                arguments: [identity.kindName, identity.matchKey]
            ) {
                throw WharfError.identityTaken(identity, owner: owner, adding: partner.name)
            }
            try db.execute(
                sql: """
                    INSERT INTO partner_identity (partner, kind, value, match_key, not_before, not_after)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [partner.name.rawValue, identity.kindName, identity.value, identity.matchKey,
                            identity.notBefore.stored, identity.notAfter.stored]
            )
        }
        for (position, pin) in partner.outbound.pins.enumerated() {
            try db.execute(
                sql: "INSERT INTO partner_pin (partner, position, pin) VALUES (?, ?, ?)",
                arguments: [partner.name.rawValue, position, pin.rawValue]
            )
        }
    }

    private static func fetch(_ name: PartnerName, _ db: Database) throws -> Partner? {
        // Cached statements: this runs for every inbound request.
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM partner WHERE name = ?"), arguments: [name.rawValue]) else {
            return nil
        }
        let identities = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM partner_identity WHERE partner = ? ORDER BY id"), arguments: [name.rawValue]
        ).map { row -> InboundIdentity in
            let value: String = row["value"]
            let kind: InboundIdentity.Kind = switch row["kind"] as String {
            case "subject": .subject(try SubjectName(parsing: value))
            default: .fingerprint(try CertificateFingerprint(parsing: value))
            }
            return try InboundIdentity(kind, notBefore: row.optionalDate("not_before"), notAfter: row.optionalDate("not_after"))
        }
        let pins = try String.fetchAll(
            db.cachedStatement(sql: "SELECT pin FROM partner_pin WHERE partner = ? ORDER BY position"), arguments: [name.rawValue]
        ).map { try PublicKeyPin(parsing: $0) }
        let clientCertificate: String? = row["client_cert_pem"]
        let clientKey: String? = row["client_key_pem"]
        let url: String? = row["url"]
        return Partner(
            name: name,
            displayName: row["display_name"],
            status: Partner.Status(rawValue: row["status"]) ?? .disabled,
            identities: identities,
            trustCAPEM: row["trust_ca_pem"],
            pinnedCertificatesPEM: row["pinned_certificates_pem"],
            revocationListPath: row["crl_path"],
            outbound: OutboundSettings(
                url: try url.map { try OutboundURL(parsing: $0) },
                serverCAPEM: row["server_ca_pem"],
                pins: pins,
                clientCredential: zip(clientCertificate, clientKey).map(ClientCredential.init),
                retryInitialDelay: row["retry_initial_seconds"],
                retryMaximumDelay: row["retry_maximum_seconds"],
                maxAttempts: row["max_attempts"],
                maxAge: row["max_age_seconds"],
                maxDeliveries: row["max_deliveries"],
                delivery: OutboundSettings.DeliveryMode(rawValue: row["delivery_mode"]) ?? .push
            ),
            maxUploadBytes: row["max_upload_bytes"]
        )
    }
}

private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

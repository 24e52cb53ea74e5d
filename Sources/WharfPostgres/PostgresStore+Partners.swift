import Foundation
import PostgresNIO
import WharfCore

/// The partner registry on the shared database: what the listener reads for every
/// connection, and what operators change from any node (a change commits once and every
/// node reads it at its next look: the partner generation is raised by triggers).
extension PostgresStore: PartnerDirectory {
    /// Registers a new partner with its identities and pins, in one transaction.
    public func add(_ partner: Partner) throws(WharfError) {
        try transaction { connection in
            for try await _ in try await connection.query("SELECT 1 FROM partner WHERE name = \(partner.name.rawValue)", logger: Self.quiet) {
                throw WharfError(
                    .conflict, "a partner named '\(partner.name)' already exists",
                    fix: "choose another name, or change it with `wharf partner update \(partner.name)`"
                )
            }
            let now = Date().roundedToMilliseconds
            let o = partner.outbound
            try await connection.run("""
                INSERT INTO partner (name, display_name, status, trust_ca_pem, url, server_ca_pem, client_cert_pem, client_key_pem,
                                     max_upload_bytes, retry_initial_seconds, retry_maximum_seconds, max_attempts, max_age_seconds,
                                     max_deliveries, pinned_certificates_pem, crl_path, delivery_mode, created_at, updated_at)
                VALUES (\(partner.name.rawValue), \(partner.displayName), \(partner.status.rawValue), \(partner.trustCAPEM),
                        \(o.url?.rawValue), \(o.serverCAPEM), \(o.clientCredential?.certificatePEM), \(o.clientCredential?.privateKeyPEM),
                        \(partner.maxUploadBytes), \(o.retryInitialDelay), \(o.retryMaximumDelay), \(o.maxAttempts), \(o.maxAge),
                        \(o.maxDeliveries), \(partner.pinnedCertificatesPEM), \(partner.revocationListPath), \(o.delivery.rawValue),
                        \(now), \(now))
                """)
            try await Self.insertChildren(of: partner, connection)
        }
    }

    /// Replaces a partner's settings with what `change` makes of them, in one transaction
    /// that holds the partner's row, so two operators' changes never interleave.
    @discardableResult
    public func update(_ name: PartnerName, _ change: @escaping @Sendable (inout Partner) throws(WharfError) -> Void) throws(WharfError) -> Partner {
        try transaction { connection in
            for try await _ in try await connection.query("SELECT 1 FROM partner WHERE name = \(name.rawValue) FOR UPDATE", logger: Self.quiet) {}
            guard var partner = try await Self.fetch(name, connection) else { throw WharfError.unknownPartner(name.rawValue) }
            try change(&partner)
            precondition(partner.name == name, "a partner's name does not change")
            let o = partner.outbound
            try await connection.run("""
                UPDATE partner SET display_name = \(partner.displayName), status = \(partner.status.rawValue),
                                   trust_ca_pem = \(partner.trustCAPEM), url = \(o.url?.rawValue), server_ca_pem = \(o.serverCAPEM),
                                   client_cert_pem = \(o.clientCredential?.certificatePEM), client_key_pem = \(o.clientCredential?.privateKeyPEM),
                                   max_upload_bytes = \(partner.maxUploadBytes), retry_initial_seconds = \(o.retryInitialDelay),
                                   retry_maximum_seconds = \(o.retryMaximumDelay), max_attempts = \(o.maxAttempts),
                                   max_age_seconds = \(o.maxAge), max_deliveries = \(o.maxDeliveries),
                                   pinned_certificates_pem = \(partner.pinnedCertificatesPEM), crl_path = \(partner.revocationListPath),
                                   delivery_mode = \(o.delivery.rawValue), updated_at = \(Date().roundedToMilliseconds)
                WHERE name = \(name.rawValue)
                """)
            try await connection.run("DELETE FROM partner_identity WHERE partner = \(name.rawValue)")
            try await connection.run("DELETE FROM partner_pin WHERE partner = \(name.rawValue)")
            try await Self.insertChildren(of: partner, connection)
            return partner
        }
    }

    /// Removes a partner and everything the registry holds about it.
    public func remove(_ name: PartnerName) throws(WharfError) {
        try transaction { connection in
            var removed = false
            for try await _ in try await connection.query("DELETE FROM partner WHERE name = \(name.rawValue) RETURNING name", logger: Self.quiet) {
                removed = true
            }
            if !removed { throw WharfError.unknownPartner(name.rawValue) }
        }
    }

    public func partner(named name: PartnerName) throws(WharfError) -> Partner? {
        try withConnection { connection in try await Self.fetch(name, connection) }
    }

    /// All partners, by name.
    public func partners() throws(WharfError) -> [Partner] {
        try withConnection { connection in
            var names: [String] = []
            for try await name in try await connection.query("SELECT name FROM partner ORDER BY name", logger: Self.quiet).decode(String.self) {
                names.append(name)
            }
            var partners: [Partner] = []
            for name in names {
                if let partner = try await Self.fetch(try PartnerName(name), connection) { partners.append(partner) }
            }
            return partners
        }
    }

    public func owners(ofFingerprint fingerprint: CertificateFingerprint, subject: SubjectName?, serial: String?) throws(WharfError) -> InboundOwners {
        try transaction { connection in
            // One snapshot for the three reads: the generation matches what was read.
            try await connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            var revocations: [Revocation] = []
            let revoked = try await connection.query(
                "SELECT * FROM revoked_certificate WHERE fingerprint = \(fingerprint.hex) OR serial = \(serial) ORDER BY id", logger: Self.quiet
            )
            for try await row in revoked { revocations.append(try Self.revocation(from: row)) }
            let generation = try await Self.partnerGeneration(connection)
            var names: [String] = []
            let owners = try await connection.query("""
                SELECT DISTINCT partner FROM partner_identity
                WHERE (kind = 'fingerprint' AND match_key = \(fingerprint.hex)) OR (kind = 'subject' AND match_key = \(subject?.matchKey))
                ORDER BY partner
                """, logger: Self.quiet)
            for try await name in owners.decode(String.self) { names.append(name) }
            var partners: [Partner] = []
            for name in names {
                if let partner = try await Self.fetch(try PartnerName(name), connection) { partners.append(partner) }
            }
            return InboundOwners(partners: partners, revocations: revocations, generation: generation)
        }
    }

    public func revocations() throws(WharfError) -> [Revocation] {
        try withConnection { connection in
            var revocations: [Revocation] = []
            for try await row in try await connection.query("SELECT * FROM revoked_certificate ORDER BY id", logger: Self.quiet) {
                revocations.append(try Self.revocation(from: row))
            }
            return revocations
        }
    }

    public func partnerGeneration() throws(WharfError) -> Int64 {
        try withConnection { connection in try await Self.partnerGeneration(connection) }
    }

    public func partnerTrustAnchors() throws(WharfError) -> [(partner: PartnerName, pem: String)] {
        try namedColumn("SELECT name, trust_ca_pem FROM partner WHERE trust_ca_pem IS NOT NULL AND status = 'active' ORDER BY name")
            .map { (partner: $0.0, pem: $0.1) }
    }

    public func partnerRevocationLists() throws(WharfError) -> [(partner: PartnerName, path: String)] {
        try namedColumn("SELECT name, crl_path FROM partner WHERE crl_path IS NOT NULL AND status = 'active' ORDER BY name")
            .map { (partner: $0.0, path: $0.1) }
    }

    public func pinnedFingerprints() throws(WharfError) -> Set<CertificateFingerprint> {
        try withConnection { connection in
            var pinned: Set<CertificateFingerprint> = []
            let rows = try await connection.query("""
                SELECT DISTINCT i.match_key FROM partner_identity i JOIN partner p ON p.name = i.partner
                WHERE i.kind = 'fingerprint' AND p.status = 'active'
                """, logger: Self.quiet)
            for try await text in rows.decode(String.self) { pinned.insert(try CertificateFingerprint(parsing: text)) }
            return pinned
        }
    }

    private func namedColumn(_ sql: String) throws(WharfError) -> [(PartnerName, String)] {
        try withConnection { connection in
            var rows: [(PartnerName, String)] = []
            for try await (name, value) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.quiet).decode((String, String).self) {
                rows.append((try PartnerName(name), value))
            }
            return rows
        }
    }

    // MARK: Rows

    private static func insertChildren(of partner: Partner, _ connection: PostgresConnection) async throws {
        for identity in partner.identities {
            let existing = try await connection.query(
                "SELECT partner FROM partner_identity WHERE kind = \(identity.kindName) AND match_key = \(identity.matchKey)", logger: quiet
            )
            for try await owner in existing.decode(String.self) {
                throw WharfError.identityTaken(identity, owner: owner, adding: partner.name)
            }
            try await connection.run("""
                INSERT INTO partner_identity (partner, kind, value, match_key, not_before, not_after)
                VALUES (\(partner.name.rawValue), \(identity.kindName), \(identity.value), \(identity.matchKey),
                        \(identity.notBefore?.roundedToMilliseconds), \(identity.notAfter?.roundedToMilliseconds))
                """)
        }
        for (position, pin) in partner.outbound.pins.enumerated() {
            try await connection.run("INSERT INTO partner_pin (partner, position, pin) VALUES (\(partner.name.rawValue), \(position), \(pin.rawValue))")
        }
    }

    static func fetch(_ name: PartnerName, _ connection: PostgresConnection) async throws -> Partner? {
        var found: PostgresRow?
        for try await row in try await connection.query("SELECT * FROM partner WHERE name = \(name.rawValue)", logger: quiet) { found = row }
        guard let found else { return nil }
        var identities: [InboundIdentity] = []
        let identityRows = try await connection.query(
            "SELECT kind, value, not_before, not_after FROM partner_identity WHERE partner = \(name.rawValue) ORDER BY id", logger: quiet
        )
        for try await (kind, value, notBefore, notAfter) in identityRows.decode((String, String, Millis?, Millis?).self) {
            let parsed: InboundIdentity.Kind = kind == "subject"
                ? .subject(try SubjectName(parsing: value)) : .fingerprint(try CertificateFingerprint(parsing: value))
            identities.append(try InboundIdentity(parsed, notBefore: notBefore?.date, notAfter: notAfter?.date))
        }
        var pins: [PublicKeyPin] = []
        let pinRows = try await connection.query("SELECT pin FROM partner_pin WHERE partner = \(name.rawValue) ORDER BY position", logger: quiet)
        for try await pin in pinRows.decode(String.self) { pins.append(try PublicKeyPin(parsing: pin)) }
        let row = found.makeRandomAccess()
        let certificate = try row["client_cert_pem"].decode(String?.self)
        let key = try row["client_key_pem"].decode(String?.self)
        return Partner(
            name: name,
            displayName: try row["display_name"].decode(String.self),
            status: Partner.Status(rawValue: try row["status"].decode(String.self)) ?? .disabled,
            identities: identities,
            trustCAPEM: try row["trust_ca_pem"].decode(String?.self),
            pinnedCertificatesPEM: try row["pinned_certificates_pem"].decode(String?.self),
            revocationListPath: try row["crl_path"].decode(String?.self),
            outbound: OutboundSettings(
                url: try row["url"].decode(String?.self).map { try OutboundURL(parsing: $0) },
                serverCAPEM: try row["server_ca_pem"].decode(String?.self),
                pins: pins,
                clientCredential: certificate.flatMap { certificate in key.map { ClientCredential(certificatePEM: certificate, privateKeyPEM: $0) } },
                retryInitialDelay: try row["retry_initial_seconds"].decode(Double?.self),
                retryMaximumDelay: try row["retry_maximum_seconds"].decode(Double?.self),
                maxAttempts: try row["max_attempts"].decode(Int?.self),
                maxAge: try row["max_age_seconds"].decode(Double?.self),
                maxDeliveries: try row["max_deliveries"].decode(Int?.self),
                delivery: OutboundSettings.DeliveryMode(rawValue: try row["delivery_mode"].decode(String.self)) ?? .push
            ),
            maxUploadBytes: try row["max_upload_bytes"].decode(Int64?.self)
        )
    }

    static func revocation(from row: PostgresRow) throws -> Revocation {
        let row = row.makeRandomAccess()
        return Revocation(
            fingerprint: try row["fingerprint"].decode(String?.self).flatMap { try? CertificateFingerprint(parsing: $0) },
            serial: try row["serial"].decode(String?.self), partner: try row["partner"].decode(String?.self),
            revokedAt: try row["revoked_at"].decode(Millis.self).date, reason: try row["reason"].decode(String.self)
        )
    }
}

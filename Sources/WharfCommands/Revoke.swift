import ArgumentParser
import Foundation
import WharfCore
import WharfStore

/// `wharf partner revoke`.
struct PartnerRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a partner's certificate: refused at the next handshake, without a restart.",
        discussion: """
            Revokes the certificate of one of the partner's fingerprint identities (the only one, \
            --fingerprint HEX, or every one with --all). A running gateway refuses it at the next \
            handshake and on every request of a TLS session resumed from before; the refusal's \
            audit event says it was revoked. A revocation cannot be undone: issue the partner a \
            new certificate (`wharf partner issue`). A subject identity names no one certificate: \
            revoke its certificate by serial (`wharf ca revoke --serial`) or remove the identity.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @Option(help: ArgumentHelp("The certificate's SHA-256 fingerprint (one of the partner's identities).", valueName: "hex"))
    var fingerprint: String?

    @Flag(help: "Revoke every certificate the partner is identified by.")
    var all = false

    @Option(help: "Why, in a few words, for the audit trail.")
    var reason: String = ""

    func run() throws {
        let name = try PartnerName(name)
        guard EscapedText.isPrintable(reason) else {
            throw WharfError.invalid("the reason contains a control or bidirectional formatting character", fix: "write it in plain text")
        }
        let registry = try home.resolved.openStore()
        guard let partner = try registry.partner(named: name) else { throw WharfError.unknownPartner(name.rawValue) }
        let held = partner.identities.compactMap { identity -> CertificateFingerprint? in
            if case .fingerprint(let value) = identity.kind { return value }
            return nil
        }
        let chosen: [CertificateFingerprint]
        if all {
            guard fingerprint == nil else { throw WharfError.invalid("give --fingerprint or --all, not both", fix: "--all revokes every certificate of the partner") }
            chosen = held
        } else if let fingerprint {
            let wanted = try CertificateFingerprint(parsing: fingerprint)
            guard held.contains(wanted) else {
                throw WharfError(.notFound, "partner '\(name)' has no identity with fingerprint \(wanted.hex)", fix: "see its identities with `wharf partner show \(name)`")
            }
            chosen = [wanted]
        } else {
            guard held.count <= 1 else {
                throw WharfError.invalid(
                    "partner '\(name)' has \(held.count) certificate identities", fix: "say which with --fingerprint HEX, or give --all"
                )
            }
            chosen = held
        }
        guard !chosen.isEmpty else {
            throw WharfError.invalid(
                "partner '\(name)' is identified by no certificate fingerprint",
                fix: "revoke a certificate Wharf issued by serial (`wharf ca revoke --serial`), or remove the subject identity"
            )
        }
        let now = Date()
        let revocations = chosen.map { Revocation(fingerprint: $0, serial: nil, partner: name.rawValue, revokedAt: now, reason: reason) }
        let event = AuditEvent(
            at: now, kind: .admin, outcome: .changed, status: nil, partner: name.rawValue, subject: nil, fingerprint: chosen.count == 1 ? chosen[0].hex : nil,
            remoteAddress: nil, detail: "revoked \(chosen.map(\.hex).joined(separator: ", "))" + (reason.isEmpty ? "" : ": \(reason)"),
            actor: OperatorAudit.user, command: "partner revoke"
        )
        let added = try registry.revoke(revocations, audit: event)
        for revocation in revocations {
            let fresh = added.contains(revocation)
            Console.print("\(fresh ? "Revoked" : "Already revoked")  \(revocation.fingerprint!.hex)")
        }
        if !added.isEmpty {
            Console.print("A running gateway refuses \(added.count == 1 ? "it" : "them") from the next handshake.")
            RevocationListPublisher.publishAfterRevoking(home: home.resolved, registry: registry)
        }
    }
}

extension CA {
    /// `wharf ca revoke`.
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate Wharf's CA issued, by its serial number.",
            discussion: """
                `openssl x509 -noout -serial -in CERT` prints a certificate's serial. A running \
                gateway refuses it from the next handshake, and on every request of a TLS session \
                resumed from before; it cannot be undone.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(help: ArgumentHelp("The serial number in hex (colons allowed).", valueName: "hex"))
        var serial: String

        @Option(help: "Why, in a few words, for the audit trail.")
        var reason: String = ""

        func run() throws {
            let serial = try Revocation.parseSerial(serial)
            guard EscapedText.isPrintable(reason) else {
                throw WharfError.invalid("the reason contains a control or bidirectional formatting character", fix: "write it in plain text")
            }
            let registry = try home.resolved.openStore()
            let now = Date()
            let event = AuditEvent(
                at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: nil,
                detail: "revoked serial \(serial)" + (reason.isEmpty ? "" : ": \(reason)"), actor: OperatorAudit.user, command: "ca revoke"
            )
            let added = try registry.revoke([Revocation(fingerprint: nil, serial: serial, partner: nil, revokedAt: now, reason: reason)], audit: event)
            Console.print(added.isEmpty ? "Serial \(serial) was already revoked." : "Revoked serial \(serial); a running gateway refuses it from the next handshake.")
            if !added.isEmpty { RevocationListPublisher.publishAfterRevoking(home: home.resolved, registry: registry) }
        }
    }
}

import ArgumentParser
import Foundation
import WharfCore
import WharfStore

/// `wharf status`: the home at a glance, and whether it needs an operator.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the home at a glance; exit 1 when something needs an operator.",
        discussion: """
            Transfers by state, the one waiting longest, the dead ones, each partner's last \
            upload, and every certificate (Wharf's CA, server and client certificates, each \
            partner identity) that expires within 30 days. Exits 1 when a transfer is dead or \
            a certificate expires within 7 days or has expired: fit for a monitoring check.
            """
    )

    @OptionGroup var home: HomeOptions

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Encodable {
        let transfers: [String: Int]
        let oldestWaiting: TransferJSON?
        let dead: [TransferJSON]
        let lastUploads: [String: Date]
        let expiringCertificates: [Expiring]
        let needsOperator: Bool
        let reasons: [String]
    }

    struct Expiring: Encodable {
        let kind: CertificateExpiry.Kind
        let partner: String?
        let fingerprint: String?
        let notAfter: Date
        let daysLeft: Int
    }

    func run() throws {
        let home = home.resolved
        let registry = try home.openStore()
        let now = Date()
        let counts = try registry.transferCounts()
        let dead = try registry.transfers(state: .dead, limit: 20)
        let certificates = try home.certificateExpiries(partners: registry.partners())
        let expiring = CertificateExpiry.expiringSoon(certificates, at: now)
        var reasons: [String] = []
        if let count = counts[.dead], count > 0 { reasons.append("\(count) dead transfer\(count == 1 ? "" : "s")") }
        if CertificateExpiry.needsOperator(certificates, at: now) {
            reasons.append("a certificate expires within \(CertificateExpiry.urgentDays) days or has expired")
        }
        let report = Report(
            transfers: Dictionary(uniqueKeysWithValues: Transfer.State.allCases.map { ($0.rawValue, counts[$0] ?? 0) }),
            oldestWaiting: try registry.oldestWaitingTransfer().map(TransferJSON.init),
            dead: dead.map(TransferJSON.init),
            lastUploads: try registry.lastUploads(),
            expiringCertificates: expiring.map {
                Expiring(kind: $0.kind, partner: $0.partner, fingerprint: $0.fingerprint, notAfter: $0.notAfter, daysLeft: $0.daysLeft(at: now))
            },
            needsOperator: !reasons.isEmpty, reasons: reasons
        )
        if json { Console.printJSON(Listing.json(report)) } else { Console.print(Self.text(report, now: now)) }
        if report.needsOperator { throw ExitCode(1) }
    }

    static func text(_ report: Report, now: Date) -> String {
        var lines: [String] = []
        lines.append(report.needsOperator ? "NEEDS AN OPERATOR: \(report.reasons.joined(separator: "; "))" : "OK")
        let states = Transfer.State.allCases.map { "\($0.rawValue) \(report.transfers[$0.rawValue] ?? 0)" }
        lines.append("Transfers   \(states.joined(separator: ", "))")
        if let oldest = report.oldestWaiting {
            lines.append("Waiting longest  \(oldest.id) to \(oldest.partner), queued \(oldest.queuedAt.formatted(.iso8601))")
        }
        for transfer in report.dead {
            lines.append("Dead        \(transfer.id) to \(transfer.partner)  \(transfer.filename)  \(transfer.lastError ?? "")")
        }
        for (partner, at) in report.lastUploads.sorted(by: { $0.key < $1.key }) {
            lines.append("Last upload \(partner)  \(at.formatted(.iso8601))")
        }
        if report.expiringCertificates.isEmpty {
            lines.append("Certificates  none expires within \(CertificateExpiry.warningDays) days")
        }
        for certificate in report.expiringCertificates {
            let whose = certificate.partner.map { "partner \($0)" } ?? "Wharf's \(Self.name(of: certificate.kind))"
            let when = certificate.daysLeft < 0 ? "expired \(-certificate.daysLeft) days ago" : "expires in \(certificate.daysLeft) days"
            lines.append("Certificate \(whose) \(when) (\(certificate.notAfter.formatted(.iso8601)))\(certificate.fingerprint.map { "  sha256 \($0)" } ?? "")")
        }
        return lines.joined(separator: "\n")
    }
}

extension Status {
    /// How `wharf status` names one of Wharf's own certificates.
    static func name(of kind: CertificateExpiry.Kind) -> String {
        switch kind {
        case .ca: "partner CA (or its one CA)"
        case .identityCA: "identity CA"
        case .server: "server certificate"
        case .client: "client certificate"
        case .partner: "partner certificate"
        }
    }
}

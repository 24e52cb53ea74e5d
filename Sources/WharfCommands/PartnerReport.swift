import Foundation
import WharfCore
import WharfPKI
import X509

/// What `partner list` and `partner show` print about a partner. Never a private key.
struct PartnerReport: Encodable {
    struct Identity: Encodable {
        let kind: String
        let value: String
        let notBefore: Date?
        let notAfter: Date?

        enum CodingKeys: CodingKey { case kind, value, notBefore, notAfter }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(value, forKey: .value)
            try container.encode(notBefore, forKey: .notBefore)
            try container.encode(notAfter, forKey: .notAfter)
        }
    }

    struct CertificateSummary: Encodable {
        let subject: String
        let sha256: String
        let notAfter: Date

        init(_ certificate: Certificate) {
            subject = certificate.subject.description
            sha256 = certificate.fingerprint.hex
            notAfter = certificate.notValidAfter
        }

        static func all(inPEM pem: String?) -> [CertificateSummary]? {
            guard let pem else { return nil }
            return (try? Certificate.parseAll(pem: pem, source: "registry"))?.map(CertificateSummary.init)
        }
    }

    struct Outbound: Encodable {
        let url: String?
        let serverCA: [CertificateSummary]?
        let pins: [String]
        /// `nil` means Wharf's own client certificate.
        let clientCertificate: CertificateSummary?
        /// This partner's overrides of the gateway's retry settings; `nil` keeps the gateway's.
        let retryInitialSeconds: Double?
        let retryMaximumSeconds: Double?
        let maxAttempts: Int?
        let maxAgeSeconds: Double?
        let maxDeliveries: Int?
        /// `push` or `pull`.
        let delivery: String

        enum CodingKeys: CodingKey {
            case url, serverCA, pins, clientCertificate, retryInitialSeconds, retryMaximumSeconds, maxAttempts, maxAgeSeconds, maxDeliveries, delivery
        }

        // Absent values are written as `null`, so scripts see every key.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(url, forKey: .url)
            try container.encode(serverCA, forKey: .serverCA)
            try container.encode(pins, forKey: .pins)
            try container.encode(clientCertificate, forKey: .clientCertificate)
            try container.encode(retryInitialSeconds, forKey: .retryInitialSeconds)
            try container.encode(retryMaximumSeconds, forKey: .retryMaximumSeconds)
            try container.encode(maxAttempts, forKey: .maxAttempts)
            try container.encode(maxAgeSeconds, forKey: .maxAgeSeconds)
            try container.encode(maxDeliveries, forKey: .maxDeliveries)
            try container.encode(delivery, forKey: .delivery)
        }
    }

    let name: String
    let displayName: String
    let status: String
    let identities: [Identity]
    let trustCA: [CertificateSummary]?
    let pinnedCertificates: [CertificateSummary]?
    /// The partner CA's CRL file, and what it holds now (or why it cannot be read).
    let crl: RevocationListSummary?
    let maxUploadBytes: Int64
    let outbound: Outbound
    /// The soonest end of an identity still valid (the last end when all have ended).
    let earliestExpiry: Date?

    enum CodingKeys: CodingKey { case name, displayName, status, identities, earliestExpiry, trustCA, pinnedCertificates, crl, maxUploadBytes, outbound }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(displayName, forKey: .displayName)
        try container.encode(status, forKey: .status)
        try container.encode(identities, forKey: .identities)
        try container.encode(earliestExpiry, forKey: .earliestExpiry)
        try container.encode(trustCA, forKey: .trustCA)
        try container.encode(pinnedCertificates, forKey: .pinnedCertificates)
        try container.encode(crl, forKey: .crl)
        try container.encode(maxUploadBytes, forKey: .maxUploadBytes)
        try container.encode(outbound, forKey: .outbound)
    }

    init(_ partner: Partner) {
        name = partner.name.rawValue
        displayName = partner.displayName
        status = partner.status.rawValue
        earliestExpiry = CertificateExpiry.earliestUpcoming(of: partner, at: Date())
        identities = partner.identities.map {
            Identity(kind: $0.kindName, value: $0.value, notBefore: $0.notBefore, notAfter: $0.notAfter)
        }
        trustCA = CertificateSummary.all(inPEM: partner.trustCAPEM)
        pinnedCertificates = CertificateSummary.all(inPEM: partner.pinnedCertificatesPEM)
        crl = partner.revocationListPath.map(RevocationListSummary.init(path:))
        maxUploadBytes = partner.uploadLimit
        outbound = Outbound(
            url: partner.outbound.url?.rawValue,
            serverCA: CertificateSummary.all(inPEM: partner.outbound.serverCAPEM),
            pins: partner.outbound.pins.map(\.rawValue),
            clientCertificate: CertificateSummary.all(inPEM: partner.outbound.clientCredential?.certificatePEM)?.first,
            retryInitialSeconds: partner.outbound.retryInitialDelay,
            retryMaximumSeconds: partner.outbound.retryMaximumDelay,
            maxAttempts: partner.outbound.maxAttempts,
            maxAgeSeconds: partner.outbound.maxAge,
            maxDeliveries: partner.outbound.maxDeliveries,
            delivery: partner.outbound.delivery.rawValue
        )
    }

    /// The report as an operator reads it.
    var text: String {
        func time(_ date: Date?) -> String { date?.formatted(.iso8601) ?? "…" }
        var lines = [
            "\(name) (\(displayName))",
            "  status        \(status)",
        ]
        if identities.isEmpty {
            lines.append("  identities    none: no certificate is accepted")
        }
        for identity in identities {
            let window = identity.notBefore == nil && identity.notAfter == nil
                ? "" : "  [\(time(identity.notBefore)) – \(time(identity.notAfter))]"
            lines.append("  identity      \(identity.kind) \(identity.value)\(window)")
        }
        lines.append("  max upload    \(ByteSize.describe(maxUploadBytes))")
        for ca in trustCA ?? [] {
            lines.append("  trust CA      \(ca.subject)  sha256 \(ca.sha256)")
        }
        for certificate in pinnedCertificates ?? [] {
            lines.append("  self-signed   \(certificate.subject)  sha256 \(certificate.sha256)")
        }
        if let crl {
            let state = crl.problem.map { "cannot be read: \($0)" }
                ?? "\(crl.revoked ?? 0) revoked, next update \(time(crl.nextUpdate))\(crl.stale == true ? " (past: the partner's certificates are refused)" : "")"
            lines.append("  CRL           \(EscapedText.terminal(crl.path))  \(state)")
        }
        if outbound.delivery == "pull" {
            lines.append("  delivery      pull: its files wait in its outbox (GET /outbox) until it fetches them")
        }
        lines.append("  url           \(outbound.url ?? "none")")
        if let serverCA = outbound.serverCA {
            for ca in serverCA { lines.append("  server CA     \(ca.subject)  expires \(time(ca.notAfter))") }
        } else {
            lines.append("  server CA     the system's CA store")
        }
        for pin in outbound.pins { lines.append("  pin           \(pin)") }
        if let client = outbound.clientCertificate {
            lines.append("  client cert   \(client.subject)  expires \(time(client.notAfter))")
        } else {
            lines.append("  client cert   Wharf's own")
        }
        let overrides = [
            outbound.retryInitialSeconds.map { "first retry within \($0) s" },
            outbound.retryMaximumSeconds.map { "retries at most \($0) s apart" },
            outbound.maxAttempts.map { "\($0) attempts" },
            outbound.maxAgeSeconds.map { "gives up after \($0) s" },
            outbound.maxDeliveries.map { "\($0) deliveries at once" },
        ].compactMap { $0 }
        lines.append("  retries       \(overrides.isEmpty ? "the gateway's settings" : overrides.joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}

/// A partner CA's CRL as `partner show` reports it, read when the report is made.
struct RevocationListSummary: Encodable {
    let path: String
    let revoked: Int?
    let nextUpdate: Date?
    let stale: Bool?
    let problem: String?

    init(path: String) {
        self.path = path
        do {
            let list = try PartnerRevocationList(contentsOf: path)
            (revoked, nextUpdate, stale, problem) = (list.serials.count, list.nextUpdate, list.isStale(at: Date()), nil)
        } catch {
            (revoked, nextUpdate, stale, problem) = (nil, nil, nil, error.problem)
        }
    }
}

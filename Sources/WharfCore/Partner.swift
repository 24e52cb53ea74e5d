import Foundation

/// A company Wharf exchanges files with.
///
/// Inbound, a partner is recognised by one of its `identities`; outbound, files are sent
/// with its `outbound` settings. A disabled partner keeps its settings but is refused.
public struct Partner: Sendable, Equatable {
    public enum Status: String, Sendable, Codable, CaseIterable {
        case active
        case disabled
    }

    public var name: PartnerName
    public var displayName: String
    public var status: Status
    public var identities: [InboundIdentity]
    /// PEM of a CA of the partner's own that issues its client certificates, trusted beside
    /// Wharf's CA for this partner only.
    public var trustCAPEM: String?
    /// PEM of client certificates the partner presents that no trusted CA issued (self-signed
    /// ones, as OpenAS2 partners use), kept for `partner show`: each is a fingerprint
    /// identity, which the listener accepts exactly, for this partner only.
    public var pinnedCertificatesPEM: String?
    /// The file holding the CRL of the partner's own CA (`--crl`): the listener reads it
    /// again whenever it changes and refuses the partner's certificates it lists, or all of
    /// them while the list is past its next update.
    public var revocationListPath: String?
    public var outbound: OutboundSettings
    /// The largest upload accepted from this partner, in bytes; `nil` means the default.
    public var maxUploadBytes: Int64?

    /// The largest upload accepted from a partner without a limit of its own: 1 GiB.
    public static let defaultMaxUploadBytes: Int64 = 1 << 30

    /// The largest upload accepted from this partner, in bytes.
    public var uploadLimit: Int64 { maxUploadBytes ?? Self.defaultMaxUploadBytes }

    public init(
        name: PartnerName,
        displayName: String? = nil,
        status: Status = .active,
        identities: [InboundIdentity] = [],
        trustCAPEM: String? = nil,
        pinnedCertificatesPEM: String? = nil,
        revocationListPath: String? = nil,
        outbound: OutboundSettings = OutboundSettings(),
        maxUploadBytes: Int64? = nil
    ) {
        self.name = name
        self.displayName = displayName ?? name.rawValue
        self.status = status
        self.identities = identities
        self.trustCAPEM = trustCAPEM
        self.pinnedCertificatesPEM = pinnedCertificatesPEM
        self.revocationListPath = revocationListPath
        self.outbound = outbound
        self.maxUploadBytes = maxUploadBytes
    }
}

/// One way a partner's client certificate is recognised, optionally only within a window,
/// so that a new certificate can be added before the old one is retired.
public struct InboundIdentity: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The certificate's subject distinguished name.
        case subject(SubjectName)
        /// The SHA-256 fingerprint of exactly one certificate.
        case fingerprint(CertificateFingerprint)
    }

    public var kind: Kind
    public var notBefore: Date?
    public var notAfter: Date?

    public init(_ kind: Kind, notBefore: Date? = nil, notAfter: Date? = nil) throws(WharfError) {
        if let notBefore, let notAfter, notBefore >= notAfter {
            throw .invalid("an identity's window must start before it ends", fix: "check --not-before and --not-after")
        }
        self.kind = kind
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// Whether the identity may be used at `date`.
    public func isValid(at date: Date) -> Bool {
        (notBefore.map { $0 <= date } ?? true) && (notAfter.map { date < $0 } ?? true)
    }

    /// Whether the identity is a subject name (and so needs a CA that issues it).
    public var isSubject: Bool {
        if case .subject = kind { true } else { false }
    }

    /// `subject` or `fingerprint`.
    public var kindName: String {
        switch kind {
        case .subject: "subject"
        case .fingerprint: "fingerprint"
        }
    }

    /// The identity as an operator writes it.
    public var value: String {
        switch kind {
        case .subject(let name): name.description
        case .fingerprint(let fingerprint): fingerprint.hex
        }
    }

    /// What two identities are compared by: equal keys recognise the same certificates.
    public var matchKey: String {
        switch kind {
        case .subject(let name): name.matchKey
        case .fingerprint(let fingerprint): fingerprint.hex
        }
    }
}

/// How files are delivered to a partner.
public struct OutboundSettings: Sendable, Equatable {
    public var url: OutboundURL?
    /// PEM bundle of the CAs that sign the partner's server certificate. Without it the
    /// system's CA store is used.
    public var serverCAPEM: String?
    /// Accepted server keys; a delivery succeeds if any one matches.
    public var pins: [PublicKeyPin]
    /// The certificate Wharf presents to this partner; `nil` means Wharf's own client certificate.
    public var clientCredential: ClientCredential?
    /// Overrides of the global retry policy for this partner; `nil` keeps the global value.
    public var retryInitialDelay: Double?
    public var retryMaximumDelay: Double?
    public var maxAttempts: Int?
    public var maxAge: Double?
    /// How many deliveries to this partner may run at once; `nil` means the global value.
    public var maxDeliveries: Int?
    /// Whether Wharf sends the partner its files or the partner fetches them.
    public var delivery: DeliveryMode

    public enum DeliveryMode: String, Sendable, CaseIterable {
        /// The worker sends each file to the partner's URL.
        case push
        /// The files wait in the partner's outbox (`GET /outbox`) until it fetches and
        /// acknowledges them: for partners that cannot accept connections.
        case pull
    }

    public init(
        url: OutboundURL? = nil,
        serverCAPEM: String? = nil,
        pins: [PublicKeyPin] = [],
        clientCredential: ClientCredential? = nil,
        retryInitialDelay: Double? = nil,
        retryMaximumDelay: Double? = nil,
        maxAttempts: Int? = nil,
        maxAge: Double? = nil,
        maxDeliveries: Int? = nil,
        delivery: DeliveryMode = .push
    ) {
        self.url = url
        self.serverCAPEM = serverCAPEM
        self.pins = pins
        self.clientCredential = clientCredential
        self.retryInitialDelay = retryInitialDelay
        self.retryMaximumDelay = retryMaximumDelay
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
        self.maxDeliveries = maxDeliveries
        self.delivery = delivery
    }

    /// The global policy with this partner's overrides applied.
    public func retryPolicy(overriding global: RetryPolicy) -> RetryPolicy {
        RetryPolicy(
            initialDelay: retryInitialDelay ?? global.initialDelay,
            maximumDelay: retryMaximumDelay ?? global.maximumDelay,
            maxAttempts: maxAttempts ?? global.maxAttempts,
            maxAge: maxAge ?? global.maxAge
        )
    }
}

/// A client certificate and its private key, both PEM.
///
/// Its `description` names the certificate only, never the key.
public struct ClientCredential: Sendable, Equatable, CustomStringConvertible {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    public var description: String { "ClientCredential(certificate only; key redacted)" }
}

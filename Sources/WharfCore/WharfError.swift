/// An error an operator or a partner can act on.
///
/// `description` is one line: what is wrong, then how to fix it. It never contains key
/// material or passwords, so it is safe to print and to log. `code` is short and bounded,
/// usable as a metric label or a JSON error code.
public struct WharfError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of problem, stable across releases.
    public enum Code: String, Sendable {
        case invalidInput = "invalid_input"
        case notFound = "not_found"
        case conflict
        case unreadableFile = "unreadable_file"
        case notInitialized = "not_initialized"
        case alreadyInitialized = "already_initialized"
        case cryptography
        /// The store (the registry database) could not be opened, read or written.
        case database
        /// A file or directory could not be created, written, synced or moved.
        case fileSystem = "file_system"
        /// The spool's file system is full.
        case insufficientStorage = "insufficient_storage"
        /// A transfer is in a state the requested change cannot start from.
        case transitionRefused = "transition_refused"
        /// The system refused memory, a handle or a socket.
        case systemResources = "system_resources"
        /// Waited as long as allowed for something that did not happen.
        case timedOut = "timed_out"
        /// Another process holds what this one needs (the home's lock).
        case busy
        /// A shared service (the PostgreSQL registry) cannot be reached now; the same
        /// request may succeed later.
        case unavailable
    }

    public let code: Code
    /// What is wrong.
    public let problem: String
    /// What to do about it, when there is something to say.
    public let fix: String?

    public init(_ code: Code, _ problem: String, fix: String? = nil) {
        self.code = code
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        guard let fix else { return problem }
        return "\(problem); \(fix)"
    }
}

extension WharfError {
    public static func invalid(_ problem: String, fix: String? = nil) -> WharfError {
        WharfError(.invalidInput, problem, fix: fix)
    }

    /// `identity` cannot be given to `partner`: it already identifies `owner`.
    public static func identityTaken(_ identity: InboundIdentity, owner: String, adding partner: PartnerName) -> WharfError {
        WharfError(
            .conflict,
            owner == partner.rawValue
                ? "\(partner) already has the \(identity.kindName) identity \(identity.value)"
                : "the \(identity.kindName) \(identity.value) already identifies partner '\(owner)'",
            fix: "a certificate maps to one partner only; remove the identity from '\(owner)' first if it moved"
        )
    }

    public static func unknownPartner(_ name: String) -> WharfError {
        WharfError(.notFound, "no partner named '\(name)'", fix: "`wharf partner list` shows the registered partners")
    }
}

extension WharfError {
    public static func cryptography(_ problem: String, fix: String? = nil) -> WharfError {
        WharfError(.cryptography, problem, fix: fix)
    }
}

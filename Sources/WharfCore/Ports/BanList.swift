/// Where the defender keeps its bans, so that `wharf defender list` and `unban` (another
/// process) see and change what the listener enforces.
///
/// Blocking: call from a thread that may block.
public protocol BanList: Sendable {
    /// Every ban remembered: in force, lifted, or expired within the last day.
    func addressBans() throws(WharfError) -> [AddressBan]

    /// Stores `ban`, replacing an earlier one of the same address.
    func saveBan(_ ban: AddressBan) throws(WharfError)
}

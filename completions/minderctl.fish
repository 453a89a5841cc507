# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_minderctl_global_optspecs
    string join \n socket= json h/help V/version
end

function __fish_minderctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_minderctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_minderctl_using_subcommand
    set -l cmd (__fish_minderctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c minderctl -n "__fish_minderctl_needs_command" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_needs_command" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_needs_command" -s V -l version -d 'Print version'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "status" -d 'Show services and groups: state, pid, uptime, restarts, last exit, last check, reason'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "start" -d 'Start services or groups, releasing an operator\'s stop'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "stop" -d 'Stop services or groups and hold them stopped until `start`'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "restart" -d 'Restart services or groups (not counted against a restart budget)'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "signal" -d 'Send a signal to the process groups of services'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "logs" -d 'Show (and follow) the output of services'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "events" -d 'Show (and follow) supervision events'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "reload" -d 'Re-read the config file and apply what changed'
complete -c minderctl -n "__fish_minderctl_needs_command" -f -a "shutdown" -d 'Stop every service in order and make minder exit'
complete -c minderctl -n "__fish_minderctl_using_subcommand status" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand status" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand start" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand start" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand stop" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand stop" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand restart" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand restart" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand signal" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand signal" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand signal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand logs" -s n -l lines -d 'How many past lines to print per service first' -r
complete -c minderctl -n "__fish_minderctl_using_subcommand logs" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand logs" -s f -l follow -d 'Keep printing new ones as they come, until Ctrl-C or minder\'s shutdown'
complete -c minderctl -n "__fish_minderctl_using_subcommand logs" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand events" -s n -l last -d 'How many past events to print first' -r
complete -c minderctl -n "__fish_minderctl_using_subcommand events" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand events" -s f -l follow -d 'Keep printing new ones as they come, until Ctrl-C or minder\'s shutdown'
complete -c minderctl -n "__fish_minderctl_using_subcommand events" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand reload" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand reload" -l dry-run -d 'Print what would change, and change nothing'
complete -c minderctl -n "__fish_minderctl_using_subcommand reload" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand reload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c minderctl -n "__fish_minderctl_using_subcommand shutdown" -l socket -d 'The control socket of the minder to talk to [default: $MINDER_SOCKET, else /run/minder/control.sock]' -r -F
complete -c minderctl -n "__fish_minderctl_using_subcommand shutdown" -l json -d 'Print JSON: status, reload and the other commands print their result as one document; logs and events print one object per line'
complete -c minderctl -n "__fish_minderctl_using_subcommand shutdown" -s h -l help -d 'Print help (see more with \'--help\')'

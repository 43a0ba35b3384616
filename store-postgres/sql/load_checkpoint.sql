SELECT commit, sequence FROM switchboard.checkpoints WHERE name = $1

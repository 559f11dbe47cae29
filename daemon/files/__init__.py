"""Files in containers: docker's archive API (`cp`), export, diff and commit."""

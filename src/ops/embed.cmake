# Turns a text file into a C++ raw string literal (used for the OpenCL kernel source).
file(READ "${IN}" content)
file(WRITE "${OUT}" "R\"CLSRC(${content})CLSRC\"\n")

/*
 * Hand-written context switch for x86-64 (System V ABI).
 *
 * A suspended context is its stack pointer; below it, from high to low
 * addresses: the return address, rbp, rbx, r12, r13, r14, r15 and one
 * 8-byte slot holding MXCSR (low 4 bytes) and the x87 control word.  The
 * ABI makes those control words callee-saved, so a switch must keep them;
 * no signal mask is touched, which is what makes swapcontext slow.
 *
 * Indirect branch tracking (Intel CET IBT) would reject the jmp to a return
 * address; this file carries no CET property note, so binaries linking it
 * are not marked IBT-compatible and run without it.
 */
#if defined(__x86_64__)

        .text

/* void coro__ctx_switch(struct coro__ctx *from, struct coro__ctx *to) */
        .globl  coro__ctx_switch
        .hidden coro__ctx_switch
        .type   coro__ctx_switch, @function
        .p2align 4
coro__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %eax                /* our MXCSR and x87 CW */
        movzwl  4(%rsp), %r8d
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        /*
         * Load the control words only when their control bits differ.
         * Loading them is slow, and MXCSR also holds sticky exception
         * flags (caller-saved) that differ between contexts all the time:
         * restoring those on every switch costs ~50 ns here.  Each load
         * reads exactly what one store wrote, so store forwarding works.
         */
        movl    (%rsp), %edx
        xorl    %eax, %edx
        movzwl  4(%rsp), %r9d
        xorl    %r8d, %r9d
        andl    $0xffc0, %edx               /* MXCSR: DAZ, masks, RC, FZ */
        andl    $0x1f3f, %r9d               /* CW: masks, PC, RC, X */
        orl     %r9d, %edx
        jnz     2f
1:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        /*
         * A plain ret keeps the return stack buffer balanced.  Every
         * coroutine switches from the same call site (the scheduler's
         * do_switch), so this ret and the ones after it are predicted
         * right; a pop+jmp would leave one stale entry per switch and make
         * every later ret mispredict.
         */
        ret
2:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     1b
        .cfi_endproc
        .size   coro__ctx_switch, .-coro__ctx_switch

/*
 * void coro__ctx_make(struct coro__ctx *ctx, void *lo, void *hi,
 *                     void (*entry)(void))
 * Builds the frame coro__ctx_switch pops: entry goes in rbx, the return
 * address is the trampoline, and the control words are the caller's.
 */
        .globl  coro__ctx_make
        .hidden coro__ctx_make
        .type   coro__ctx_make, @function
        .p2align 4
coro__ctx_make:
        .cfi_startproc
        andq    $-16, %rdx                  /* 16-aligned top */
        leaq    -64(%rdx), %rax
        leaq    coro__ctx_trampoline(%rip), %r8
        movq    %r8, 56(%rax)               /* return address */
        movq    $0, 48(%rax)                /* rbp: end of frame chain */
        movq    %rcx, 40(%rax)              /* rbx: entry */
        movq    $0, 32(%rax)                /* r12 */
        movq    $0, 24(%rax)                /* r13 */
        movq    $0, 16(%rax)                /* r14 */
        movq    $0, 8(%rax)                 /* r15 */
        stmxcsr (%rax)
        fnstcw  4(%rax)
        movq    %rax, (%rdi)
        ret
        .cfi_endproc
        .size   coro__ctx_make, .-coro__ctx_make

/*
 * First code a new context runs, entered by the ret of coro__ctx_switch
 * with rsp 16-aligned.  It is the outermost frame: unwinders stop here.
 */
        .type   coro__ctx_trampoline, @function
        .p2align 4
coro__ctx_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        callq   *%rbx
        ud2                                 /* entry never returns */
        .cfi_endproc
        .size   coro__ctx_trampoline, .-coro__ctx_trampoline

#endif /* __x86_64__ */

        .section .note.GNU-stack,"",@progbits

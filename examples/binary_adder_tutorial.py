"""Peter Roelants' binary-addition RNN tutorial (part 2) as printed, on the drop-in
``fastrnn.compat.binary_adder``: the only change to the tutorial's code is the import line
(plus this file's ``main()`` wrapper; the loss curve is printed instead of plotted, so that
matplotlib and seaborn are not needed).

    python examples/binary_adder_tutorial.py

``examples/binary_addition.py`` trains the same network with fastrnn's own modules
(``nn.Recurrent``, ``optim.RMSpropNesterov``) instead.
"""

import numpy as np  # Matrix and vector computation package

from fastrnn.compat.binary_adder import RnnBinaryAdder, create_dataset, printSample


def main():
    # Set the seed for reproducability
    np.random.seed(seed=1)

    # Create dataset
    nb_train = 2000  # Number of training samples
    # Addition of 2 n-bit numbers can result in a n+1 bit number
    sequence_len = 7  # Length of the binary sequence

    # Create training samples
    X_train, T_train = create_dataset(nb_train, sequence_len)
    print(f'X_train tensor shape: {X_train.shape}')
    print(f'T_train tensor shape: {T_train.shape}')

    # Print the first sample
    printSample(X_train[0, :, 0], X_train[0, :, 1], T_train[0, :, :])

    # Do gradient checking
    # Define an RNN to test
    RNN = RnnBinaryAdder(2, 1, 3, sequence_len)
    # Get the gradients of the parameters from a subset of the data
    backprop_grads = RNN.getParamGrads(
        X_train[0:100, :, :], T_train[0:100, :, :])

    eps = 1e-7  # Set the small change to compute the numerical gradient
    # Compute the numerical gradients of the parameters in all layers.
    for p_idx, param in enumerate(RNN.get_params_iter()):
        grad_backprop = backprop_grads[p_idx]
        # + eps
        param += eps
        plus_loss = RNN.loss(
            RNN.getOutput(X_train[0:100, :, :]), T_train[0:100, :, :])
        # - eps
        param -= 2 * eps
        min_loss = RNN.loss(
            RNN.getOutput(X_train[0:100, :, :]), T_train[0:100, :, :])
        # reset param value
        param += eps
        # calculate numerical gradient
        grad_num = (plus_loss - min_loss) / (2 * eps)
        # Raise error if the numerical grade is not close to the
        # backprop gradient
        if not np.isclose(grad_num, grad_backprop):
            raise ValueError((
                f'Numerical gradient of {grad_num:.6f} is not close '
                f'to the backpropagation gradient of {grad_backprop:.6f}!'
            ))
    print('No gradient errors found')

    # Set hyper-parameters
    lmbd = 0.5  # Rmsprop lambda
    learning_rate = 0.05  # Learning rate
    momentum_term = 0.80  # Momentum term
    eps = 1e-6  # Numerical stability term to prevent division by zero
    mb_size = 100  # Size of the minibatches (number of samples)

    # Create the network
    nb_of_states = 3  # Number of states in the recurrent layer
    RNN = RnnBinaryAdder(2, 1, nb_of_states, sequence_len)
    # Set the initial parameters
    # Number of parameters in the network
    nbParameters = sum(1 for _ in RNN.get_params_iter())
    # Rmsprop moving average
    maSquare = [0.0 for _ in range(nbParameters)]
    Vs = [0.0 for _ in range(nbParameters)]  # Momentum

    # Create a list of minibatch losses to be plotted
    ls_of_loss = [
        RNN.loss(RNN.getOutput(X_train[0:100, :, :]), T_train[0:100, :, :])]
    # Iterate over some iterations
    for i in range(5):
        # Iterate over all the minibatches
        for mb in range(nb_train // mb_size):
            X_mb = X_train[mb:mb + mb_size, :, :]  # Input minibatch
            T_mb = T_train[mb:mb + mb_size, :, :]  # Target minibatch
            V_tmp = [v * momentum_term for v in Vs]
            # Update each parameters according to previous gradient
            for pIdx, P in enumerate(RNN.get_params_iter()):
                P += V_tmp[pIdx]
            # Get gradients after following old velocity
            # Get the parameter gradients
            backprop_grads = RNN.getParamGrads(X_mb, T_mb)
            # Update each parameter seperately
            for pIdx, P in enumerate(RNN.get_params_iter()):
                # Update the Rmsprop moving averages
                maSquare[pIdx] = lmbd * maSquare[pIdx] + (
                    1 - lmbd) * backprop_grads[pIdx]**2
                # Calculate the Rmsprop normalised gradient
                pGradNorm = ((
                    learning_rate * backprop_grads[pIdx]) / np.sqrt(
                    maSquare[pIdx]) + eps)
                # Update the momentum
                Vs[pIdx] = V_tmp[pIdx] - pGradNorm
                P -= pGradNorm  # Update the parameter
            # Add loss to list to plot
            ls_of_loss.append(RNN.loss(RNN.getOutput(X_mb), T_mb))

    # The loss over the iterations (the tutorial plots it)
    for it in range(0, len(ls_of_loss), 20):
        print(f'minibatch iteration {it:3d}: loss {ls_of_loss[it]:.4f}')

    # Create test samples
    nb_test = 5
    Xtest, Ttest = create_dataset(nb_test, sequence_len)
    # Push test data through network
    Y = RNN.getBinaryOutput(Xtest)
    Yf = RNN.getOutput(Xtest)  # noqa: F841  (as the tutorial)

    # Print out all test examples
    for i in range(Xtest.shape[0]):
        printSample(Xtest[i, :, 0], Xtest[i, :, 1], Ttest[i, :, :], Y[i, :, :])
        print('')
    return ls_of_loss, RNN


if __name__ == "__main__":
    main()
